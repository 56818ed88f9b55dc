"""Payments (消费), refunds (退款) and top-ups (充值)."""

from __future__ import annotations

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model


class Payment(Model):
    id = fields.CharField(max_length=40, primary_key=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    store_id = fields.CharField(max_length=40)
    amount = fields.BigIntField()
    principal_amount = fields.BigIntField()
    bonus_amount = fields.BigIntField()
    sessions = fields.IntField(
        default=0, db_default=0
    )  # sessions redeemed (次卡核销), 0 for money payments
    session_transfer_id = fields.CharField(max_length=40, null=True)
    refunded_amount = fields.BigIntField(default=0)
    refunded_principal = fields.BigIntField(default=0)
    refunded_bonus = fields.BigIntField(default=0)
    status = fields.CharField(max_length=20)
    transfer_id = fields.CharField(max_length=40)
    actor_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()

    class Meta:
        table = "payments"
        constraints = (
            CheckConstraint(
                check="refunded_amount >= 0 AND refunded_amount <= amount"
                " AND refunded_principal <= principal_amount AND refunded_bonus <= bonus_amount",
                name="ck_payment_refund_within",
            ),
        )


class Refund(Model):
    id = fields.CharField(max_length=40, primary_key=True)
    payment_id = fields.CharField(max_length=40, db_index=True)
    amount = fields.BigIntField()
    principal_amount = fields.BigIntField()
    bonus_amount = fields.BigIntField()
    kind = fields.CharField(max_length=12)  # REFUND or VOID
    reason = fields.CharField(max_length=200, null=True)
    transfer_id = fields.CharField(max_length=40)
    actor_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()

    class Meta:
        table = "refunds"


class TopUp(Model):
    """充值. Counter cash succeeds at once; online channels stay PENDING until the provider's
    verified notification credits the card (exactly once), or the top-up EXPIRES unpaid.

    The id is the `out_trade_no` the provider knows it by (at most 32 characters).
    """

    id = fields.CharField(max_length=32, primary_key=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    amount = fields.BigIntField()
    bonus = fields.BigIntField(default=0)
    channel = fields.CharField(max_length=20)
    status = fields.CharField(max_length=12)  # PENDING SUCCEEDED FAILED EXPIRED REFUND_DUE
    transfer_id = fields.CharField(max_length=40, null=True)
    actor_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True, db_index=True)
    provider_trade_no = fields.CharField(max_length=64, null=True)
    failure_reason = fields.CharField(max_length=200, null=True)
    # WeChat Pay's prepay_id (valid two hours) once the order is placed; the app's signed pay
    # parameters are rebuilt from it on demand (Alipay's order string needs nothing stored).
    prepay_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "top_ups"


class Hold(Model):
    """A two-phase card payment (预授权): money set aside now, captured or released later.

    The held money sits in the hold's own ledger account (`<hold id>:CARD_HELD`) until the
    capture moves part or all of it to the merchant and returns the rest to the card. An
    uncaptured hold expires by database time and its money goes back.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    store_id = fields.CharField(max_length=40)
    amount = fields.BigIntField()
    principal_amount = fields.BigIntField()
    bonus_amount = fields.BigIntField()
    captured_amount = fields.BigIntField(default=0)
    status = fields.CharField(max_length=12)  # PENDING CAPTURED RELEASED EXPIRED
    reference = fields.CharField(max_length=40, null=True)  # the booking or order it serves
    expires_at = fields.DatetimeField(db_index=True)
    transfer_id = fields.CharField(max_length=40)
    settle_transfer_id = fields.CharField(max_length=40, null=True)
    payment_id = fields.CharField(max_length=40, null=True)
    actor_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()
    settled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "holds"
        constraints = (
            CheckConstraint(
                check="amount > 0 AND principal_amount + bonus_amount = amount"
                " AND captured_amount >= 0 AND captured_amount <= amount",
                name="ck_hold_amounts",
            ),
        )
