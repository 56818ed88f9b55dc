"""Merchants (发卡企业): onboarding, stores, staff accounts and terminals."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from domain import clock
from domain.actor import Actor, Role
from domain.audit import service as audit
from domain.db import transaction
from domain.errors import forbidden, invalid_input
from domain.identity import service as identity
from domain.identity.models import User
from domain.identity.secrets import token_hash
from domain.ids import has_prefix, new_id
from domain.merchants import errors
from domain.merchants.models import Merchant, Store, Terminal

INDUSTRIES = (
    "RETAIL",
    "CATERING",
    "BEAUTY",
    "FITNESS",
    "EDUCATION",
    "LAUNDRY",
    "HOSPITALITY",
    "CULTURE",
    "OTHER",
)


def _name(value: str, field: str = "name") -> str:
    value = value.strip()
    if not value or len(value) > 100:
        raise invalid_input(field, "名称须为 1-100 个字符", "Name must be 1-100 characters")
    return value


async def get_merchant(merchant_id: str, field: str = "merchantId") -> Merchant:
    merchant = (
        await Merchant.get_or_none(id=merchant_id) if has_prefix(merchant_id, "mch") else None
    )
    if merchant is None:
        raise errors.merchant_not_found(field)
    return merchant


async def get_store(store_id: str, field: str = "storeId") -> Store:
    store = await Store.get_or_none(id=store_id) if has_prefix(store_id, "sto") else None
    if store is None:
        raise errors.store_not_found(field)
    return store


async def create_merchant(
    actor: Actor,
    *,
    name: str,
    region_code: str,
    industry: str,
    issuer_class: str | None,
    admin_username: str,
    admin_password: str,
) -> Merchant:
    """Onboard a merchant with its first admin (operator only)."""
    name = _name(name)
    identity.check_region(region_code)
    industry = industry.strip().upper()
    if industry not in INDUSTRIES:
        raise invalid_input(
            "industry",
            f"行业须为 {', '.join(INDUSTRIES)} 之一",
            f"Industry must be one of {', '.join(INDUSTRIES)}",
        )
    async with transaction() as conn:
        merchant = await Merchant.create(
            using_db=conn,
            id=new_id("mch"),
            name=name,
            region_code=region_code,
            industry=industry,
            issuer_class=(issuer_class or "").strip() or None,
            created_at=clock.now(),
        )
        admin = await identity.create_user_with_password(
            conn,
            username=admin_username,
            password=admin_password,
            role=Role.MERCHANT_ADMIN,
            merchant_id=merchant.id,
        )
        await audit.record(
            conn, actor, "merchantCreate", merchant.id, {"name": name, "admin": admin.id}
        )
    return merchant


async def create_store(actor: Actor, merchant_id: str, name: str, region_code: str | None) -> Store:
    merchant = await get_merchant(merchant_id)
    if not (actor.is_admin_of(merchant.id) or actor.role == Role.OPERATOR):
        raise forbidden()
    name = _name(name)
    if region_code is not None:
        identity.check_region(region_code)
    async with transaction() as conn:
        store = await Store.create(
            using_db=conn,
            id=new_id("sto"),
            merchant_id=merchant.id,
            name=name,
            region_code=region_code or merchant.region_code,
            created_at=clock.now(),
        )
        await audit.record(conn, actor, "storeCreate", store.id, {"merchant": merchant.id})
    return store


async def create_staff(
    actor: Actor,
    merchant_id: str,
    username: str,
    password: str,
    role: str,
    store_ids: list[str] | None,
) -> User:
    merchant = await get_merchant(merchant_id)
    if not (actor.is_admin_of(merchant.id) or actor.role == Role.OPERATOR):
        raise forbidden()
    if role not in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF):
        raise errors.invalid_role()
    store_ids = list(dict.fromkeys(store_ids or []))
    if store_ids:
        found = await Store.filter(id__in=store_ids, merchant_id=merchant.id).count()
        if found != len(store_ids):
            raise errors.store_not_found("storeIds")
    async with transaction() as conn:
        user = await identity.create_user_with_password(
            conn,
            username=username,
            password=password,
            role=Role(role),
            merchant_id=merchant.id,
            store_ids=store_ids,
        )
        await audit.record(conn, actor, "staffCreate", user.id, {"role": role, "stores": store_ids})
    return user


@dataclass(frozen=True)
class RegisteredTerminal:
    terminal: Terminal
    key: str


async def register_terminal(actor: Actor, store_id: str, name: str) -> RegisteredTerminal:
    """A terminal key is shown once here and stored only as a hash."""
    store = await get_store(store_id)
    if not (actor.is_admin_of(store.merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden()
    key = "tk_" + secrets.token_urlsafe(32)
    async with transaction() as conn:
        terminal = await Terminal.create(
            using_db=conn,
            id=new_id("trm"),
            merchant_id=store.merchant_id,
            store_id=store.id,
            name=_name(name),
            key_hash=token_hash(key),
            created_at=clock.now(),
        )
        await audit.record(conn, actor, "terminalRegister", terminal.id, {"store": store.id})
    return RegisteredTerminal(terminal=terminal, key=key)


# A terminal key is checked on every request the device makes (every payment); remembering the
# answer briefly saves a round trip per payment. A revoked key stops working within the TTL.
TERMINAL_CACHE_SECONDS = 10.0
_terminals: dict[str, tuple[Terminal, float]] = {}


async def authenticate_terminal(key: str) -> Terminal | None:
    if not key.startswith("tk_") or len(key) > 100:
        return None
    digest = token_hash(key)
    now_mono = time.monotonic()
    cached = _terminals.get(digest)
    if cached is not None and now_mono - cached[1] < TERMINAL_CACHE_SECONDS:
        return cached[0]
    terminal = await Terminal.get_or_none(key_hash=digest, revoked_at__isnull=True)
    if terminal is None:
        _terminals.pop(digest, None)
        return None
    if len(_terminals) > 10_000:
        _terminals.clear()
    _terminals[digest] = (terminal, now_mono)
    now = clock.now()
    # Last-seen is advisory; written at most once a minute per terminal.
    if terminal.last_seen_at is None or (now - terminal.last_seen_at).total_seconds() > 60:
        await Terminal.filter(id=terminal.id).update(last_seen_at=now)
        terminal.last_seen_at = now
    return terminal
