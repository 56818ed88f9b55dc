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


class CardCancellation(Model):
    """退卡: a request to cancel a card and pay its remaining principal back, decided once.

    Bonus value and unused sessions are forfeited; the principal leaves through a recorded
    payout (cash up to the rulebook's limit, else to a bank account kept encrypted).
    """

    id = fields.CharField(max_length=40, primary_key=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    # the card id while REQUESTED, NULL once decided: one open request per card
    open_key = fields.CharField(max_length=40, null=True, unique=True)
    status = fields.CharField(max_length=12)  # REQUESTED COMPLETED REJECTED
    reason = fields.CharField(max_length=200)
    cooling_off = fields.BooleanField(default=False)
    pay_by = fields.DatetimeField(null=True)  # a cooling-off refund is due by then
    payout_method = fields.CharField(max_length=16)  # CASH or BANK_ACCOUNT
    bank_account_last4 = fields.CharField(max_length=4, null=True)
    bank_account_encrypted = fields.TextField(null=True)
    account_name = fields.CharField(max_length=50, null=True)
    principal_refunded = fields.BigIntField(default=0)
    bonus_forfeited = fields.BigIntField(default=0)
    sessions_forfeited = fields.IntField(default=0)
    transfer_id = fields.CharField(max_length=40, null=True)
    requested_by = fields.CharField(max_length=40)
    decided_by = fields.CharField(max_length=40, null=True)
    decision_note = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "card_cancellations"
