"""Card products and cards (预付卡). Balances live in ledger accounts, not here."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class CardProduct(Model):
    """What a merchant sells: kind, validity, bonus rules, spending order, PIN threshold."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=12)
    validity_days = fields.IntField(null=True)
    face_values: fields.JSONField[list[int]] = fields.JSONField(default=list)
    bonus_rules: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    bonus_first = fields.BooleanField(default=False)
    pin_threshold = fields.BigIntField(null=True)
    # 次卡: one pack is `session_count` sessions for `session_price` fen.
    session_count = fields.IntField(null=True)
    session_price = fields.BigIntField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "card_products"


class Card(Model):
    id = fields.CharField(max_length=40, primary_key=True)
    number = fields.CharField(max_length=19, unique=True)
    product_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    kind = fields.CharField(max_length=12)
    status = fields.CharField(max_length=12)
    holder_id = fields.CharField(max_length=40, null=True, db_index=True)
    pin_hash = fields.CharField(max_length=200, null=True)
    pin_failures = fields.IntField(default=0)
    pin_locked_until = fields.DatetimeField(null=True)
    uid_hash = fields.CharField(max_length=64, null=True, unique=True)
    expires_at = fields.DatetimeField(null=True)
    replaced_by_id = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "cards"


class CardActivity(Model):
    """One line of a card's statement: a transfer as the card holder sees it."""

    id = fields.CharField(max_length=40, primary_key=True)
    card_id = fields.CharField(max_length=40)
    transfer_id = fields.CharField(max_length=40)
    kind = fields.CharField(max_length=16)
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    sessions = fields.IntField(
        default=0, db_default=0
    )  # change in sessions (次卡), 0 for stored value
    sessions_after = fields.IntField(null=True)
    store_id = fields.CharField(max_length=40, null=True)
    reference = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "card_activities"
        indexes = (("card_id", "id"),)
