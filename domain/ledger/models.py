"""The double-entry ledger: accounts, immutable transfers and their entries, idempotency keys.

Account ids are deterministic (`<owner>:<kind>[:<shard>]`), so the payment path never looks an
account up before it moves money.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Account(Model):
    """A balance in one asset (FEN, POINTS, SESSIONS), changed only by transfers."""

    id = fields.CharField(max_length=80, primary_key=True)
    owner_id = fields.CharField(max_length=40, db_index=True)
    kind = fields.CharField(max_length=32)
    asset = fields.CharField(max_length=12)
    balance = fields.BigIntField(default=0)
    version = fields.BigIntField(default=0)
    allow_negative = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "ledger_accounts"
        constraints = (
            CheckConstraint(check="allow_negative OR balance >= 0", name="ck_account_not_negative"),
        )


class Transfer(Model):
    """One business event moving value: all its entries commit together and sum to zero."""

    id = fields.CharField(max_length=40, primary_key=True)
    kind = fields.CharField(max_length=24)
    asset = fields.CharField(max_length=12)
    amount = fields.BigIntField()
    reference = fields.CharField(max_length=40, null=True, db_index=True)
    reverses_id = fields.CharField(max_length=40, null=True, unique=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "ledger_transfers"
        constraints = (CheckConstraint(check="amount > 0", name="ck_transfer_positive"),)


class Entry(Model):
    """One account's side of a transfer, with the account's running balance and version."""

    id = fields.BigIntField(primary_key=True)
    transfer_id = fields.CharField(max_length=40, db_index=True)
    account_id = fields.CharField(max_length=80)
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    version = fields.BigIntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "ledger_entries"
        constraints = (
            UniqueConstraint(fields=("account_id", "version"), name="uq_entry_account_version"),
            CheckConstraint(check="amount <> 0", name="ck_entry_nonzero"),
        )


class IdempotencyKey(Model):
    """Written in the same transaction as the effect: a retry finds it and replays the result."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=40)
    key = fields.CharField(max_length=100)
    operation = fields.CharField(max_length=40)
    request_hash = fields.CharField(max_length=64)
    result_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()
    extra: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "idempotency_keys"
        constraints = (UniqueConstraint(fields=("scope", "key"), name="uq_idempotency_scope_key"),)
