"""Shifts (班次), counter transactions and daily closes (日结) of a store."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Shift(Model):
    """One staff member's shift at one store: the cash drawer they answer for."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    store_id = fields.CharField(max_length=40, db_index=True)
    staff_id = fields.CharField(max_length=40, db_index=True)
    business_day = fields.CharField(max_length=10)
    status = fields.CharField(max_length=8)  # OPEN or CLOSED
    # "<staff>:<store>" while OPEN, NULL once closed: one open shift per staff and store.
    open_key = fields.CharField(max_length=81, null=True, unique=True)
    opening_float = fields.BigIntField(default=0)
    expected_cash = fields.BigIntField(null=True)
    counted_cash = fields.BigIntField(null=True)
    opened_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "counter_shifts"


class CounterEntry(Model):
    """A counter transaction, written in the same database transaction as its money movement.

    `cash` is its effect on the cash drawer (+ in, - out, 0 for bank card or card-only moves).
    """

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40)
    store_id = fields.CharField(max_length=40)
    staff_id = fields.CharField(max_length=40)
    shift_id = fields.CharField(max_length=40, db_index=True)
    business_day = fields.CharField(max_length=10)
    kind = fields.CharField(max_length=16)  # CARD_SALE TOP_UP REFUND VOID REPLACE CANCEL_REFUND
    channel = fields.CharField(max_length=16)  # CASH BANK_CARD CARD (back to a card) NONE
    amount = fields.BigIntField()
    cash = fields.BigIntField()
    reference = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()

    class Meta:
        table = "counter_entries"
        indexes = (("store_id", "business_day"),)


class DailyClose(Model):
    """日结: a store's business day, totalled and locked. Later corrections go to the next day."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40)
    store_id = fields.CharField(max_length=40)
    business_day = fields.CharField(max_length=10)
    totals: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    expected_cash = fields.BigIntField()
    closed_by = fields.CharField(max_length=40)
    closed_at = fields.DatetimeField()

    class Meta:
        table = "daily_closes"
        # unique_together, not a named constraint: on SQLite AddConstraint rebuilds the table.
        unique_together = (("store_id", "business_day"),)
