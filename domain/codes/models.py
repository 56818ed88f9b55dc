"""Payment codes (付款码), the devices that derive offline codes, and the counters behind the
daily code limit and the anti-guessing limits."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class PaymentCode(Model):
    """A consumer-presented code: single use, short-lived, kept only as a keyed hash.

    Online codes are issued by paymentCodeCreate and stored unused. Offline codes are derived on
    the phone and stored when first presented, already used; the device and its time step are
    unique, so one step of one device pays at most once.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    code_hash = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=8)  # ONLINE or OFFLINE
    card_id = fields.CharField(max_length=40, db_index=True)
    holder_id = fields.CharField(max_length=40, null=True)
    device_id = fields.CharField(max_length=40, null=True)
    step = fields.BigIntField(null=True)  # offline codes: the TOTP time step
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by_id = fields.CharField(max_length=40, null=True)  # the terminal or staff member

    class Meta:
        table = "payment_codes"
        # unique_together, not a UniqueConstraint: CreateModel builds it into the table, while
        # an AddConstraint rebuilds the SQLite table and drops its other indexes.
        unique_together = (("device_id", "step"),)


class PaymentCodeDevice(Model):
    """A phone provisioned to derive offline codes for one card (TOTP, 30 s steps).

    Its secret is HMAC(app secret key, device id): recomputed, never stored. The serial is the
    device's number inside every code it derives.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    serial = fields.IntField(unique=True)
    card_id = fields.CharField(max_length=40, db_index=True)
    holder_id = fields.CharField(max_length=40)
    name = fields.CharField(max_length=60)
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    last_step = fields.BigIntField(null=True)  # the newest step paid with: older ones are refused
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payment_code_devices"


class PaymentCodeDailyTotal(Model):
    """How much one card paid by code on one China Standard Time day (the rulebook's limit)."""

    id = fields.CharField(max_length=60, primary_key=True)  # card id + ':' + YYYYMMDD
    card_id = fields.CharField(max_length=40)
    day = fields.CharField(max_length=8)
    amount = fields.BigIntField(default=0)

    class Meta:
        table = "payment_code_daily_totals"


class PaymentCodeFailure(Model):
    """One failed code lookup, counted per terminal or staff member and per card (guessing)."""

    id = fields.CharField(max_length=40, primary_key=True)
    scope = fields.CharField(max_length=60)
    at = fields.DatetimeField()

    class Meta:
        table = "payment_code_failures"
        indexes = (("scope", "at"),)
