"""Charges waiting at a terminal for a card tap, the taps the reader bridge reports, DESFire
authentications relayed through it, and the counters behind the limits on weak UID cards."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class TerminalCharge(Model):
    """An amount entered by staff on the tablet, waiting for a card to be tapped on the reader.

    The payment it becomes is made with the idempotency key `tch:<id>` in the terminal's scope, so
    one charge is paid at most once however many taps (or retries of a tap) arrive.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    terminal_id = fields.CharField(max_length=40)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    store_id = fields.CharField(max_length=40)
    amount = fields.BigIntField()
    idempotency_key = fields.CharField(max_length=100)
    status = fields.CharField(max_length=12)  # PENDING SUCCEEDED CANCELLED EXPIRED
    payment_id = fields.CharField(max_length=40, null=True)
    card_id = fields.CharField(max_length=40, null=True)  # the card last tapped for it
    # the last refusal of a tap ({code, zh, en, field}); the charge stays PENDING
    last_error: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "terminal_charges"
        unique_together = (("terminal_id", "idempotency_key"),)
        indexes = (("terminal_id", "status", "created_at"),)


class ReaderTap(Model):
    """One card tap reported by a reader bridge, unique per terminal and tap key: a report sent
    again (the bridge retries until it hears an answer) finds its first outcome here."""

    id = fields.CharField(max_length=40, primary_key=True)
    terminal_id = fields.CharField(max_length=40)
    idempotency_key = fields.CharField(max_length=100)
    uid_hash = fields.CharField(max_length=64)
    charge_id = fields.CharField(max_length=40, null=True)
    payment_id = fields.CharField(max_length=40, null=True)
    authentic = fields.BooleanField(default=False)  # a DESFire proof was verified
    status = fields.CharField(max_length=16)  # PROCESSING SUCCEEDED FAILED
    error_code = fields.CharField(max_length=40, null=True)
    tapped_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "reader_taps"
        unique_together = (("terminal_id", "idempotency_key"),)


class DesfireAuth(Model):
    """The server's half of one AES mutual authentication with a DESFire card, relayed by a
    bridge: RndA is the server's challenge; the card proves the key by returning it rotated."""

    id = fields.CharField(max_length=40, primary_key=True)
    terminal_id = fields.CharField(max_length=40)
    uid_hash = fields.CharField(max_length=64)
    rnd_a = fields.CharField(max_length=32)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by = fields.CharField(max_length=100, null=True)  # the tap key that spent it

    class Meta:
        table = "desfire_auths"


class CardTapStats(Model):
    """How often a physical card was presented by UID (all time), and when last."""

    card_id = fields.CharField(max_length=40, primary_key=True)
    taps = fields.BigIntField(default=0)
    authentic_taps = fields.BigIntField(default=0)
    last_tap_at = fields.DatetimeField(null=True)

    class Meta:
        table = "card_tap_stats"


class UidDailyTotal(Model):
    """How much one card paid by UID without a PIN on one China Standard Time day."""

    id = fields.CharField(max_length=60, primary_key=True)  # card id + ':' + YYYYMMDD
    card_id = fields.CharField(max_length=40)
    day = fields.CharField(max_length=8)
    amount = fields.BigIntField(default=0)

    class Meta:
        table = "uid_daily_totals"


class ProductTapPolicy(Model):
    """What a card product's physical cards are, and the limits on taps by UID.

    Without a row a product's cards are plain UID cards under the default limits.
    """

    product_id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    technology = fields.CharField(max_length=16)  # UID DESFIRE_EV2 DESFIRE_EV3
    taps_per_minute = fields.IntField()
    daily_amount_without_pin = fields.BigIntField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "product_tap_policies"
