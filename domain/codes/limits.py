"""Limits around payment codes: attempts and failures against guessing, and the rulebook's
daily amount for payments by code."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import clock, config
from domain.actor import Actor
from domain.cards.models import Card
from domain.codes import errors, settings
from domain.codes.models import PaymentCodeDailyTotal, PaymentCodeFailure
from domain.ids import new_id
from domain.merchants.service import get_merchant
from domain.rules import service as rules


def actor_scope(actor: Actor) -> str:
    return f"actor:{actor.id}"


def card_scope(card_id: str) -> str:
    return f"card:{card_id}"


async def check_attempt(actor: Actor) -> None:
    """Every presented code counts (shared by workers through Redis when configured); the
    actor's recent failures are counted in the database and stop it before the lookup."""
    limiter = config.get().rate_limiter
    if not await limiter.hit(f"paycode:try:{actor.id}", settings.ATTEMPTS_PER_MINUTE, 60):
        raise errors.rate_limited()
    await check_failures(actor_scope(actor), settings.FAILURES_PER_ACTOR)


async def check_failures(scope: str, limit: int) -> None:
    since = clock.now() - timedelta(seconds=settings.FAILURE_WINDOW_SECONDS)
    if await PaymentCodeFailure.filter(scope=scope, at__gte=since).count() >= limit:
        raise errors.rate_limited()


async def record_failure(*scopes: str) -> None:
    now = clock.now()
    await PaymentCodeFailure.bulk_create(
        [PaymentCodeFailure(id=new_id("pcf"), scope=scope, at=now) for scope in scopes]
    )
    if random.random() < 0.02:  # noqa: S311 (housekeeping, not secrecy)
        cutoff = now - timedelta(seconds=2 * settings.FAILURE_WINDOW_SECONDS)
        await PaymentCodeFailure.filter(at__lt=cutoff).delete()


@dataclass(frozen=True)
class Reservation:
    """Part of a card's daily code allowance taken by a payment in flight."""

    row_id: str
    amount: int


_MERCHANT_REGION: dict[str, str] = {}


async def _region(merchant_id: str) -> str:
    region = _MERCHANT_REGION.get(merchant_id)
    if region is None:
        region = (await get_merchant(merchant_id)).region_code
        if len(_MERCHANT_REGION) > 50_000:
            _MERCHANT_REGION.clear()
        _MERCHANT_REGION[merchant_id] = region
    return region


async def reserve_daily_amount(card: Card, amount: int) -> Reservation:
    """Take `amount` from the card's allowance for code payments today, or refuse.

    One conditional UPDATE (`amount <= limit - this payment`), so concurrent code payments of
    one card cannot pass the limit together.
    """
    limit = rules.for_region(await _region(card.merchant_id)).payment_code_daily_limit
    if amount > limit:
        raise errors.daily_limit_exceeded(limit)
    day = clock.beijing_day().replace("-", "")  # YYYYMMDD, as the day column holds
    row_id = f"{card.id}:{day}"
    if not await PaymentCodeDailyTotal.exists(id=row_id):
        try:
            await PaymentCodeDailyTotal.create(id=row_id, card_id=card.id, day=day, amount=0)
        except IntegrityError:
            pass  # a concurrent payment created it
    taken = await PaymentCodeDailyTotal.filter(id=row_id, amount__lte=limit - amount).update(
        amount=F("amount") + amount
    )
    if not taken:
        raise errors.daily_limit_exceeded(limit)
    return Reservation(row_id=row_id, amount=amount)


async def release_daily_amount(reservation: Reservation) -> None:
    """Give back what a payment that did not go through had taken."""
    await PaymentCodeDailyTotal.filter(id=reservation.row_id).update(
        amount=F("amount") - reservation.amount
    )
