"""The append-only audit log, hash-chained so tampering is detectable."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditRecord(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    actor_id = fields.CharField(max_length=40, null=True)
    actor_role = fields.CharField(max_length=20, null=True)
    action = fields.CharField(max_length=64)
    target = fields.CharField(max_length=64, null=True)
    ip = fields.CharField(max_length=64, null=True)
    request_id = fields.CharField(max_length=64, null=True)
    details: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "audit_records"
