"""Offline payment codes: a phone provisioned once derives codes itself, without signal.

Code layout (18 digits): `PP` the Yikatong prefix, `DDDDDDDD` the device block (50,000,000 plus
the device's serial, so its first digit is 5-9, which tells an offline code from an online one,
whose third digit is 0-4), then `TTTTTTTT` an 8-digit TOTP (RFC 6238: HMAC-SHA1, 30 s steps) of
the device's secret. The server accepts the step of its clock and one step either side, so a phone
up to 30 s off still pays, and refuses a step of a device that is not newer than the last step
that paid (so each code pays once, and an older code seen by someone else is dead).

The device secret is HMAC-SHA256(app secret key, "payment-code-device" + device id), truncated to
160 bits (RFC 4226's recommended length): the server recomputes it instead of storing it, so a
database dump does not leak it. Rotating the app secret key therefore invalidates every device
(their owners register again); revoking a device stops its codes at once.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime

import pyotp
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from domain import clock
from domain.actor import Actor, Role
from domain.cards import service as cards
from domain.codes import errors, limits, settings
from domain.codes.models import PaymentCode, PaymentCodeDevice
from domain.db import transaction
from domain.errors import DomainError, invalid_input
from domain.identity.secrets import keyed_hash
from domain.ids import has_prefix, new_id

DIGITS = 8
PERIOD = 30
DRIFT = 1  # steps either side
CLASSIFY = 10  # steps either side within which a wrong-time code is called expired, not invalid
SERIAL_BASE = 50_000_000
SERIALS = 50_000_000
ALGORITHM = "SHA1"


def device_secret(device_id: str) -> str:
    """The device's TOTP secret in base32 (32 characters), recomputed from the app secret."""
    raw = bytes.fromhex(keyed_hash(device_id, "payment-code-device"))[:20]
    return base64.b32encode(raw).decode("ascii")


def _totp(device_id: str) -> pyotp.TOTP:
    return pyotp.TOTP(device_secret(device_id), digits=DIGITS, interval=PERIOD)


def code_prefix(serial: int) -> str:
    """The first 10 digits of every code of a device: the prefix and the device block."""
    return settings.prefix() + f"{SERIAL_BASE + serial:08d}"


def step_at(at: datetime) -> int:
    return int(at.timestamp()) // PERIOD


def offline_code(device_id: str, serial: int, at: datetime) -> str:
    """The code a device shows at a time (what the app computes; tests use it)."""
    return code_prefix(serial) + _totp(device_id).generate_otp(step_at(at))


def is_offline(code: str) -> bool:
    return code[2] >= "5"


def provisioning_uri(device: PaymentCodeDevice, secret: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=code_prefix(device.serial), issuer_name="Yikatong"
    )


async def register(actor: Actor, card_id: str, name: str) -> tuple[PaymentCodeDevice, str]:
    """Provision a device for the holder's card; the secret is returned this once."""
    card = await cards.card_for(actor, card_id)
    if actor.role != Role.CONSUMER or card.holder_id != actor.id:
        raise errors.not_card_holder()
    cards.ensure_usable(card)
    name = name.strip()
    if not 1 <= len(name) <= 60:
        raise invalid_input("deviceName", "设备名称须为 1-60 个字符", "Name the device (1-60)")
    active = await PaymentCodeDevice.filter(card_id=card.id, revoked_at__isnull=True).count()
    if active >= settings.DEVICES_PER_CARD:
        raise errors.device_limit_reached(settings.DEVICES_PER_CARD)
    for _ in range(5):
        try:
            device = await PaymentCodeDevice.create(
                id=new_id("pcd"),
                serial=secrets.randbelow(SERIALS),
                card_id=card.id,
                holder_id=actor.id,
                name=name,
                created_at=clock.now(),
            )
        except IntegrityError:
            continue  # the serial was taken: draw another
        return device, device_secret(device.id)
    raise RuntimeError("no free device serial after 5 draws")


async def _device_for(actor: Actor, device_id: str) -> PaymentCodeDevice:
    device = (
        await PaymentCodeDevice.get_or_none(id=device_id) if has_prefix(device_id, "pcd") else None
    )
    if device is None:
        raise errors.device_not_found()
    try:
        await cards.card_for(actor, device.card_id)
    except DomainError as exc:  # another tenant's device reads as not found
        raise errors.device_not_found() from exc
    return device


async def revoke(actor: Actor, device_id: str) -> PaymentCodeDevice:
    """The holder, the card's merchant staff or an operator; revoking twice is harmless."""
    device = await _device_for(actor, device_id)
    if device.revoked_at is None:
        now = clock.now()
        await PaymentCodeDevice.filter(id=device.id, revoked_at__isnull=True).update(revoked_at=now)
        device.revoked_at = now
    return device


async def devices_of(actor: Actor, card_id: str) -> list[PaymentCodeDevice]:
    card = await cards.card_for(actor, card_id)
    return await PaymentCodeDevice.filter(card_id=card.id).order_by("-created_at").limit(50)


def _match(totp: pyotp.TOTP, otp: str, steps: range) -> int | None:
    for step in steps:
        if hmac.compare_digest(totp.generate_otp(step), otp):
            return step
    return None


async def consume(actor: Actor, code: str) -> str:
    """Verify an offline code and spend its (device, step); the card it pays from."""
    device = await PaymentCodeDevice.get_or_none(serial=int(code[2:10]) - SERIAL_BASE)
    if device is None or device.revoked_at is not None:
        await limits.record_failure(limits.actor_scope(actor))
        raise errors.code_invalid()
    card_scope = limits.card_scope(device.card_id)
    await limits.check_failures(card_scope, settings.FAILURES_PER_CARD)
    now = clock.now()
    current = step_at(now)
    totp = _totp(device.id)
    otp = code[10:]
    step = _match(totp, otp, range(current - DRIFT, current + DRIFT + 1))
    if step is None:
        # A code of this device from a few minutes off is a phone clock or a stale screen,
        # not a guess: say so, and do not count it against the card.
        if _match(totp, otp, range(current - CLASSIFY, current + CLASSIFY + 1)) is not None:
            raise errors.code_expired()
        await limits.record_failure(limits.actor_scope(actor), card_scope)
        raise errors.code_invalid()
    async with transaction() as conn:
        spent = (
            await PaymentCodeDevice.filter(id=device.id, revoked_at__isnull=True)
            .filter(Q(last_step__isnull=True) | Q(last_step__lt=step))
            .using_db(conn)
            .update(last_step=step, last_used_at=now)
        )
        if not spent:
            raise errors.CodeAlreadyUsed(device.card_id)
        await PaymentCode.create(
            using_db=conn,
            id=new_id("pco"),
            code_hash=keyed_hash(code, "payment-code"),
            kind="OFFLINE",
            card_id=device.card_id,
            holder_id=device.holder_id,
            device_id=device.id,
            step=step,
            created_at=now,
            expires_at=datetime.fromtimestamp((step + DRIFT + 1) * PERIOD, now.tzinfo),
            used_at=now,
            used_by_id=actor.id,
        )
    return device.card_id
