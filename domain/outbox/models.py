"""Events written in the same transaction as the change they describe; a relay publishes them."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class OutboxEvent(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=120)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    created_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_events"
        indexes = (("published_at", "id"),)
