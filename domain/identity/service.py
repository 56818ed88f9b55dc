"""Logins: password, phone + one-time code, and rotating refresh tokens."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import clock, config
from domain.actor import Actor, Origin, Role
from domain.audit import service as audit
from domain.db import transaction
from domain.errors import invalid_input
from domain.identity import errors
from domain.identity.models import OtpChallenge, RefreshToken, User
from domain.identity.secrets import (
    hash_password,
    keyed_hash,
    mask_phone,
    normalize_phone,
    token_hash,
    verify_password,
)
from domain.identity.tokens import issue_access_token
from domain.ids import new_id
from domain.outbox import service as outbox

log = structlog.get_logger(__name__)

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    user: User


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise invalid_input(
            "username",
            "用户名须为 3-64 位字母、数字或 _.@-",
            "Username must be 3-64 letters, digits or _.@-",
        )
    return username.lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD or len(password) > 256:
        raise errors.weak_password()


async def create_user_with_password(
    conn: BaseDBAsyncClient,
    *,
    username: str,
    password: str,
    role: Role,
    merchant_id: str | None = None,
    store_ids: list[str] | None = None,
    organisation: str | None = None,
    region_code: str | None = None,
) -> User:
    """Create a password user inside the caller's transaction."""
    username = check_username(username)
    check_password(password)
    if await User.filter(username=username).using_db(conn).exists():
        raise errors.username_taken()
    user = User(
        id=new_id("usr"),
        role=str(role),
        username=username,
        password_hash=await hash_password(password),
        merchant_id=merchant_id,
        store_ids=store_ids or [],
        organisation=organisation,
        region_code=region_code,
        created_at=clock.now(),
    )
    try:
        await user.save(using_db=conn)
    except IntegrityError as exc:
        raise errors.username_taken() from exc
    return user


async def _issue_tokens(
    conn: BaseDBAsyncClient, user: User, family_id: str | None = None
) -> Tokens:
    cfg = config.get()
    now = clock.now()
    refresh = "rt_" + secrets.token_urlsafe(32)
    await RefreshToken.create(
        using_db=conn,
        id=new_id("rtk"),
        user_id=user.id,
        family_id=family_id or new_id("rtk"),
        token_hash=token_hash(refresh),
        created_at=now,
        expires_at=now + timedelta(seconds=cfg.refresh_token_ttl),
    )
    access = issue_access_token(
        user.id, user.role, user.merchant_id, user.store_ids or [], user.region_code
    )
    return Tokens(access_token=access, refresh_token=refresh, user=user)


async def login(username: str, password: str, origin: Origin) -> Tokens:
    cfg = config.get()
    name = username.strip().lower()
    if not await cfg.rate_limiter.hit(f"login:{name}:{origin.ip}", 10, 900):
        raise errors.rate_limited()
    user = await User.get_or_none(username=name) if _USERNAME.match(name) else None
    ok = await verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise errors.invalid_credentials()
    async with transaction() as conn:
        tokens = await _issue_tokens(conn, user)
        await audit.record(conn, _actor(user, origin), "login", user.id)
    return tokens


async def request_otp(phone: str, origin: Origin) -> tuple[str, int]:
    """Send a code; returns the masked phone and the seconds it stays valid."""
    cfg = config.get()
    normalized = normalize_phone(phone)
    if normalized is None:
        raise errors.invalid_phone()
    limiter = cfg.rate_limiter
    if not await limiter.hit(f"otp:phone:min:{normalized}", 1, 60):
        raise errors.rate_limited("phone")
    if not await limiter.hit(f"otp:phone:hour:{normalized}", cfg.otp_per_phone_per_hour, 3600):
        raise errors.rate_limited("phone")
    if origin.ip and not await limiter.hit(f"otp:ip:{origin.ip}", cfg.otp_per_ip_per_hour, 3600):
        raise errors.rate_limited()
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = clock.now()
    await OtpChallenge.create(
        id=new_id("otp"),
        phone=normalized,
        code_hash=keyed_hash(f"{normalized}:{code}", "otp"),
        created_at=now,
        expires_at=now + timedelta(seconds=cfg.otp_ttl),
        ip=origin.ip,
    )
    await cfg.sms.send(normalized, "login_code", {"code": code, "minutes": str(cfg.otp_ttl // 60)})
    return mask_phone(normalized) or "", cfg.otp_ttl


async def login_with_otp(phone: str, code: str, origin: Origin) -> Tokens:
    cfg = config.get()
    normalized = normalize_phone(phone)
    if normalized is None:
        raise errors.invalid_phone()
    # Guessing across many phones from one address is stopped here; per code by `attempts`.
    if origin.ip and not await cfg.rate_limiter.hit(
        f"otp-verify:ip:{origin.ip}", cfg.otp_verifications_per_ip_per_hour, 3600
    ):
        raise errors.rate_limited()
    challenge = (
        await OtpChallenge.filter(phone=normalized, consumed_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    now = clock.now()
    if challenge is None:
        raise errors.code_invalid()
    if challenge.expires_at <= now:
        raise errors.code_expired()
    # Count the attempt before comparing, in one conditional statement, so parallel guesses
    # cannot exceed the limit.
    counted = await OtpChallenge.filter(
        id=challenge.id, consumed_at__isnull=True, attempts__lt=cfg.otp_max_attempts
    ).update(attempts=F("attempts") + 1)
    if not counted:
        raise errors.code_locked()
    if not re.fullmatch(r"\d{6}", code) or not secrets.compare_digest(
        keyed_hash(f"{normalized}:{code}", "otp"), challenge.code_hash
    ):
        raise errors.code_invalid()
    async with transaction() as conn:
        used = (
            await OtpChallenge.filter(id=challenge.id, consumed_at__isnull=True)
            .using_db(conn)
            .update(consumed_at=now)
        )
        if not used:
            raise errors.code_invalid()
        user = await User.filter(phone=normalized).using_db(conn).first()
        created = False
        if user is None:
            user = User(id=new_id("usr"), role=str(Role.CONSUMER), phone=normalized, created_at=now)
            await user.save(using_db=conn)
            created = True
        if user.role != Role.CONSUMER or not user.is_active:
            raise errors.invalid_credentials()
        tokens = await _issue_tokens(conn, user)
        await audit.record(
            conn, _actor(user, origin), "loginWithOtp", user.id, {"created": created}
        )
    log.info("consumer logged in", user_id=user.id, phone=mask_phone(normalized), new=created)
    return tokens


async def refresh(refresh_token: str, origin: Origin) -> Tokens:
    """Rotate: the presented token is spent and a new one of the same family is issued.

    Presenting a spent token means it was copied: the whole family is revoked.
    """
    now = clock.now()
    row = await RefreshToken.get_or_none(token_hash=token_hash(refresh_token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise errors.refresh_invalid()
    async with transaction() as conn:
        spent = (
            await RefreshToken.filter(id=row.id, used_at__isnull=True, revoked_at__isnull=True)
            .using_db(conn)
            .update(used_at=now)
        )
        if spent:
            user = await User.filter(id=row.user_id).using_db(conn).first()
            if user is None or not user.is_active:
                raise errors.refresh_invalid()
            return await _issue_tokens(conn, user, row.family_id)
    await revoke_family(row.family_id, row.user_id, origin, "refresh token reused")
    raise errors.refresh_reused()


async def revoke_family(family_id: str, user_id: str, origin: Origin, reason: str) -> None:
    async with transaction() as conn:
        await (
            RefreshToken.filter(family_id=family_id, revoked_at__isnull=True)
            .using_db(conn)
            .update(revoked_at=clock.now())
        )
        await audit.record(
            conn, origin, "revokeRefreshFamily", user_id, {"family": family_id, "reason": reason}
        )
        await outbox.emit(
            conn,
            f"user:{user_id}",
            {"kind": "SESSION_REVOKED", "reason": reason, "at": clock.now().isoformat()},
        )
    log.warning("refresh token family revoked", user_id=user_id, reason=reason)


def _actor(user: User, origin: Origin) -> Actor:
    return Actor(
        id=user.id,
        role=Role(user.role),
        merchant_id=user.merchant_id,
        store_ids=tuple(user.store_ids or ()),
        region_code=user.region_code,
        ip=origin.ip,
        request_id=origin.request_id,
    )


async def create_operator(username: str, password: str) -> User:
    async with transaction() as conn:
        user = await create_user_with_password(
            conn, username=username, password=password, role=Role.OPERATOR
        )
        await audit.record(conn, Origin(), "createOperator", user.id, {"username": user.username})
    return user


async def create_official(
    actor: Actor, username: str, password: str, role: str, organisation: str, region_code: str
) -> User:
    """A regulator (sees its region) or a custodian bank user."""
    if role not in (Role.REGULATOR, Role.CUSTODIAN):
        raise invalid_input(
            "role", "角色须为 REGULATOR 或 CUSTODIAN", "Role must be REGULATOR or CUSTODIAN"
        )
    if not organisation.strip() or len(organisation) > 100:
        raise invalid_input("organisation", "机构名称不能为空", "Organisation is required")
    check_region(region_code)
    async with transaction() as conn:
        user = await create_user_with_password(
            conn,
            username=username,
            password=password,
            role=Role(role),
            organisation=organisation.strip(),
            region_code=region_code,
        )
        await audit.record(conn, actor, "officialCreate", user.id, {"role": role})
    return user


def check_region(region_code: str, field: str = "regionCode") -> None:
    """A six-digit administrative division code (行政区划代码), e.g. 110105."""
    if not re.fullmatch(r"\d{6}", region_code or ""):
        raise invalid_input(field, "行政区划代码须为 6 位数字", "Region code must be 6 digits")
