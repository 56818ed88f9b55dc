"""UID cards are weak: a UID is public (any phone reads it) and cheap to clone.

So every presentation of a card by UID is counted per card, and a payment by UID needs the card's
PIN when the card was tapped more than the product's `taps_per_minute` in the current minute,
or when it would take the card's payments by UID without a PIN today past
`daily_amount_without_pin` (UID_PIN_REQUIRED). A product can declare DESFire EV2/EV3 cards: its
cards are then accepted by UID only inside a reader tap whose DESFire proof the server verified
(`authentic_tap`), never by a bare `cardUid` (DESFIRE_PROOF_REQUIRED).

Hooks: `check_presented` for every card presented by UID (pay, holds, session redemption) and
`admit` / `release` around a payment by UID (domain/payments/service.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import clock, config
from domain.actor import Actor, Role
from domain.audit import service as audit
from domain.cards import service as cards
from domain.cards.models import Card
from domain.db import transaction
from domain.errors import forbidden, invalid_input
from domain.terminals import errors
from domain.terminals.models import CardTapStats, ProductTapPolicy, UidDailyTotal

TECHNOLOGIES = ("UID", "DESFIRE_EV2", "DESFIRE_EV3")
DEFAULT_TAPS_PER_MINUTE = 6
DEFAULT_DAILY_AMOUNT_WITHOUT_PIN = 50_000  # 500 yuan
POLICY_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Policy:
    product_id: str
    technology: str = "UID"
    taps_per_minute: int = DEFAULT_TAPS_PER_MINUTE
    daily_amount_without_pin: int = DEFAULT_DAILY_AMOUNT_WITHOUT_PIN

    @property
    def desfire(self) -> bool:
        return self.technology.startswith("DESFIRE")


_policies: dict[str, tuple[Policy, float]] = {}


async def policy_for(product_id: str) -> Policy:
    """A product's policy, remembered for a few seconds per process (changes are rare; the
    process that changes one forgets it at once)."""
    cached = _policies.get(product_id)
    if cached is not None and time.monotonic() - cached[1] < POLICY_CACHE_SECONDS:
        return cached[0]
    row = await ProductTapPolicy.get_or_none(product_id=product_id)
    policy = (
        Policy(
            product_id=product_id,
            technology=row.technology,
            taps_per_minute=row.taps_per_minute,
            daily_amount_without_pin=row.daily_amount_without_pin,
        )
        if row is not None
        else Policy(product_id=product_id)
    )
    if len(_policies) > 50_000:
        _policies.clear()
    _policies[product_id] = (policy, time.monotonic())
    return policy


async def set_policy(
    actor: Actor,
    *,
    product_id: str,
    technology: str,
    taps_per_minute: int | None,
    daily_amount_without_pin: int | None,
) -> Policy:
    product = await cards.get_product(product_id)
    if not (actor.is_admin_of(product.merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden()
    if technology not in TECHNOLOGIES:
        raise errors.invalid_technology()
    taps = DEFAULT_TAPS_PER_MINUTE if taps_per_minute is None else taps_per_minute
    if not 1 <= taps <= 600:
        raise invalid_input(
            "tapsPerMinute", "每分钟刷卡次数须为 1-600", "Taps per minute must be 1-600"
        )
    daily = (
        DEFAULT_DAILY_AMOUNT_WITHOUT_PIN
        if daily_amount_without_pin is None
        else daily_amount_without_pin
    )
    if not 0 <= daily <= cards.MAX_AMOUNT:
        raise invalid_input(
            "dailyAmountWithoutPin", "免密额度须为非负整数（分）", "Must be a number of fen >= 0"
        )
    async with transaction() as conn:
        await ProductTapPolicy.update_or_create(
            defaults={
                "merchant_id": product.merchant_id,
                "technology": technology,
                "taps_per_minute": taps,
                "daily_amount_without_pin": daily,
                "updated_at": clock.now(),
            },
            using_db=conn,
            product_id=product.id,
        )
        await audit.record(
            conn,
            actor,
            "cardProductTapPolicySet",
            product.id,
            {"technology": technology, "tapsPerMinute": taps, "dailyAmountWithoutPin": daily},
        )
    _policies.pop(product.id, None)
    return await policy_for(product.id)


async def policy_for_actor(actor: Actor, product_id: str) -> Policy:
    product = await cards.get_product(product_id)
    if not (cards.is_staff_for(actor, product.merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden()
    return await policy_for(product.id)


# --- authenticity of the tap in hand ---------------------------------------------------------

_authentic: ContextVar[str | None] = ContextVar("authentic_uid_hash", default=None)


@contextmanager
def authentic_tap(uid_hash: str | None) -> Iterator[None]:
    """Inside: the card with this UID hash proved its DESFire key in this tap."""
    token = _authentic.set(uid_hash)
    try:
        yield
    finally:
        _authentic.reset(token)


def is_authentic(card: Card) -> bool:
    verified = _authentic.get()
    return verified is not None and verified == card.uid_hash


# --- the hooks -------------------------------------------------------------------------------


async def check_presented(card: Card) -> None:
    """A card presented by UID: DESFire products need a verified proof; every tap is counted."""
    policy = await policy_for(card.product_id)
    authentic = is_authentic(card)
    if policy.desfire and not authentic:
        raise errors.desfire_proof_required()
    await _count_tap(card.id, authentic)


async def _count_tap(card_id: str, authentic: bool) -> None:
    now = clock.now()
    extra = 1 if authentic else 0
    updates = {
        "taps": F("taps") + 1,
        "authentic_taps": F("authentic_taps") + extra,
        "last_tap_at": now,
    }
    if await CardTapStats.filter(card_id=card_id).update(**updates):
        return
    try:
        await CardTapStats.create(card_id=card_id, taps=1, authentic_taps=extra, last_tap_at=now)
    except IntegrityError:  # a concurrent first tap created it
        await CardTapStats.filter(card_id=card_id).update(**updates)


async def tap_count(card_id: str) -> int:
    row = await CardTapStats.get_or_none(card_id=card_id)
    return row.taps if row is not None else 0


@dataclass(frozen=True)
class Allowance:
    """Part of a card's daily amount without PIN taken by a payment in flight."""

    row_id: str
    amount: int


async def admit(card: Card, amount: int, pin: str | None) -> Allowance | None:
    """A payment by UID, after the card checks (a PIN given there was verified).

    An authentic DESFire tap passes; otherwise, without the PIN, the card's taps this minute and
    its amount paid by UID without PIN today must stay within the product's policy.
    """
    if is_authentic(card):
        return None
    policy = await policy_for(card.product_id)
    pin_verified = pin is not None and card.pin_hash is not None
    limiter = config.get().rate_limiter
    within_rate = await limiter.hit(f"uidtap:{card.id}", policy.taps_per_minute, 60)
    if pin_verified:
        return None
    if not within_rate or amount > policy.daily_amount_without_pin:
        raise errors.uid_pin_required()
    day = clock.beijing_day().replace("-", "")  # YYYYMMDD, as the day column holds
    row_id = f"{card.id}:{day}"
    if not await UidDailyTotal.exists(id=row_id):
        try:
            await UidDailyTotal.create(id=row_id, card_id=card.id, day=day, amount=0)
        except IntegrityError:
            pass  # a concurrent payment created it
    # One conditional UPDATE: concurrent payments of one card cannot pass the limit together.
    taken = await UidDailyTotal.filter(
        id=row_id, amount__lte=policy.daily_amount_without_pin - amount
    ).update(amount=F("amount") + amount)
    if not taken:
        raise errors.uid_pin_required()
    return Allowance(row_id=row_id, amount=amount)


async def release(allowance: Allowance | None) -> None:
    """The payment failed: give its amount back to the card's allowance."""
    if allowance is not None:
        await UidDailyTotal.filter(id=allowance.row_id).update(
            amount=F("amount") - allowance.amount
        )
