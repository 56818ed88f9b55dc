"""Users of every role, their refresh tokens and one-time login codes."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class User(Model):
    """A person who logs in: consumer (by phone), merchant staff, operator, custodian, regulator."""

    id = fields.CharField(max_length=40, primary_key=True)
    role = fields.CharField(max_length=20)
    username = fields.CharField(max_length=64, null=True, unique=True)
    password_hash = fields.CharField(max_length=200, null=True)
    phone = fields.CharField(max_length=20, null=True, unique=True)
    merchant_id = fields.CharField(max_length=40, null=True, db_index=True)
    store_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    organisation = fields.CharField(max_length=100, null=True)
    region_code = fields.CharField(max_length=12, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "users"


class RefreshToken(Model):
    """One refresh token of a rotating family (only the hash is stored)."""

    id = fields.CharField(max_length=40, primary_key=True)
    user_id = fields.CharField(max_length=40, db_index=True)
    family_id = fields.CharField(max_length=40, db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_tokens"


class OtpChallenge(Model):
    """A 6-digit code sent to a phone: 5 minutes, 5 attempts, single use."""

    id = fields.CharField(max_length=40, primary_key=True)
    phone = fields.CharField(max_length=20, db_index=True)
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    consumed_at = fields.DatetimeField(null=True)
    ip = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "otp_challenges"
