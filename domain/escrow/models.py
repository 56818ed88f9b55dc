"""A merchant's escrow account at its custodian bank, and the daily required-vs-held checks.

The money itself lives in ledger accounts (`<merchant>:MERCHANT_ESCROW[:shard]`); these rows say
who holds it and under which policy, and what each day's check found.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint
from tortoise.models import Model


class EscrowAccount(Model):
    """存管账户: the custodian (an organisation whose CUSTODIAN users see it) and the policy."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, unique=True)
    custodian = fields.CharField(max_length=100, db_index=True)  # the custodian's organisation
    bank_account_last4 = fields.CharField(max_length=4)
    policy = fields.CharField(max_length=16)  # RATIO or FULL_CUSTODY
    ratio_percent = fields.IntField(null=True)  # RATIO: share of the prepaid balance held
    opened_by = fields.CharField(max_length=40)
    opened_at = fields.DatetimeField()

    class Meta:
        table = "escrow_accounts"


class EscrowCheck(Model):
    """One merchant's daily check: the prepaid balance owed, what must be held, what is held."""

    id = fields.BigIntField(primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    day = fields.CharField(max_length=10)  # YYYY-MM-DD, Beijing time
    outstanding = fields.BigIntField()
    required = fields.BigIntField()
    held = fields.BigIntField()
    short = fields.BooleanField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "escrow_checks"
        constraints = (
            UniqueConstraint(fields=("merchant_id", "day"), name="uq_escrow_check_merchant_day"),
        )
