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
    id = fields.CharField(max_length=32, primary_key=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    amount = fields.BigIntField()
    bonus = fields.BigIntField(default=0)
    channel = fields.CharField(max_length=20)
    status = fields.CharField(max_length=12)
    transfer_id = fields.CharField(max_length=40, null=True)
    actor_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "top_ups"
