"""Merchants (发卡企业), their stores and terminals."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Merchant(Model):
    id = fields.CharField(max_length=40, primary_key=True)
    name = fields.CharField(max_length=100)
    region_code = fields.CharField(max_length=12, db_index=True)
    industry = fields.CharField(max_length=40)
    issuer_class = fields.CharField(max_length=40, null=True)
    status = fields.CharField(max_length=20, default="ACTIVE")
    created_at = fields.DatetimeField()

    class Meta:
        table = "merchants"


class Store(Model):
    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=100)
    region_code = fields.CharField(max_length=12)
    status = fields.CharField(max_length=20, default="OPEN")
    created_at = fields.DatetimeField()

    class Meta:
        table = "stores"


class Terminal(Model):
    """A POS tablet or card reader of one store, authenticated by a key stored hashed."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    store_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=100)
    key_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    # what the device said in its last heartbeat
    heartbeat_at = fields.DatetimeField(null=True)
    app_version = fields.CharField(max_length=40, null=True)
    reader_status = fields.CharField(max_length=200, null=True)
    key_rotated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "terminals"
