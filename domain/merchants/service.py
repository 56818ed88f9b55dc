"""Merchants (发卡企业): onboarding, stores, staff accounts and terminals."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from domain import clock
from domain.actor import Actor, Role
from domain.audit import service as audit
from domain.db import transaction
from domain.errors import forbidden, invalid_input, unauthenticated
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
    key = _new_key()
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
# answer briefly saves a round trip per payment. Rotating or revoking a key drops it from this
# process's cache at once; another worker may still accept it for up to TERMINAL_CACHE_SECONDS,
# except where `live_terminal` reads the row fresh (terminal charges and reader taps).
TERMINAL_CACHE_SECONDS = 10.0
_terminals: dict[str, tuple[Terminal, float]] = {}


def _new_key() -> str:
    return "tk_" + secrets.token_urlsafe(32)


def forget_terminal_key(digest: str) -> None:
    _terminals.pop(digest, None)


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


async def live_terminal(actor: Actor) -> Terminal:
    """The acting terminal read fresh: a key revoked in another worker stops here at once,
    not when that worker's cache expires."""
    if actor.role != Role.TERMINAL:
        raise forbidden("Only a terminal does this")
    terminal = await Terminal.get_or_none(id=actor.id)
    if terminal is None or terminal.revoked_at is not None:
        raise unauthenticated("Invalid or revoked terminal key")
    return terminal


async def _managed_terminal(actor: Actor, terminal_id: str, *, itself: bool) -> Terminal:
    """A terminal the actor manages: its merchant's admin, an operator, or (`itself`) the
    terminal. Others' terminals are reported as not found."""
    terminal = (
        await Terminal.get_or_none(id=terminal_id) if has_prefix(terminal_id, "trm") else None
    )
    if terminal is None:
        raise errors.terminal_not_found()
    allowed = actor.is_admin_of(terminal.merchant_id) or actor.role == Role.OPERATOR
    if itself and actor.role == Role.TERMINAL and actor.id == terminal.id:
        allowed = True
    if not allowed:
        raise errors.terminal_not_found()
    return terminal


async def rotate_terminal_key(actor: Actor, terminal_id: str) -> RegisteredTerminal:
    """A new key, shown once; the old one stops working (see TERMINAL_CACHE_SECONDS)."""
    terminal = await _managed_terminal(actor, terminal_id, itself=True)
    if terminal.revoked_at is not None:
        raise errors.terminal_revoked()
    key = _new_key()
    now = clock.now()
    async with transaction() as conn:
        # Conditional on the hash read above: of two concurrent rotations one wins.
        changed = (
            await Terminal.filter(
                id=terminal.id, key_hash=terminal.key_hash, revoked_at__isnull=True
            )
            .using_db(conn)
            .update(key_hash=token_hash(key), key_rotated_at=now)
        )
        if not changed:
            raise errors.terminal_revoked()
        await audit.record(conn, actor, "terminalKeyRotate", terminal.id)
    forget_terminal_key(terminal.key_hash)
    terminal.key_hash, terminal.key_rotated_at = token_hash(key), now
    return RegisteredTerminal(terminal=terminal, key=key)


async def revoke_terminal(actor: Actor, terminal_id: str) -> Terminal:
    """The terminal's key stops working for good (a lost or stolen device)."""
    terminal = await _managed_terminal(actor, terminal_id, itself=False)
    if terminal.revoked_at is None:
        now = clock.now()
        async with transaction() as conn:
            await (
                Terminal.filter(id=terminal.id, revoked_at__isnull=True)
                .using_db(conn)
                .update(revoked_at=now)
            )
            await audit.record(conn, actor, "terminalRevoke", terminal.id)
        terminal.revoked_at = now
    forget_terminal_key(terminal.key_hash)
    return terminal


async def heartbeat(actor: Actor, app_version: str | None, reader_status: str | None) -> Terminal:
    """The device says it is alive, which app it runs and how its readers are."""
    terminal = await live_terminal(actor)
    if (app_version and len(app_version) > 40) or (reader_status and len(reader_status) > 200):
        raise errors.status_too_long()
    now = clock.now()
    await Terminal.filter(id=terminal.id).update(
        last_seen_at=now, heartbeat_at=now, app_version=app_version, reader_status=reader_status
    )
    terminal.last_seen_at = terminal.heartbeat_at = now
    terminal.app_version, terminal.reader_status = app_version, reader_status
    return terminal


async def list_terminals(actor: Actor, merchant_id: str, store_id: str | None) -> list[Terminal]:
    """A merchant's terminals with their last-seen time (admins of the merchant, operators)."""
    merchant = await get_merchant(merchant_id)
    if not (actor.is_admin_of(merchant.id) or actor.role == Role.OPERATOR):
        raise forbidden()
    query = Terminal.filter(merchant_id=merchant.id)
    if store_id is not None:
        query = query.filter(store_id=store_id)
    return await query.order_by("id").limit(500)
