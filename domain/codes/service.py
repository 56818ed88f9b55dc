"""Consumer-presented payment codes (付款码): issue, and turn a presented code into its card.

Online code layout (18 digits): `PP` the Yikatong prefix (settings.py), then 16 random digits
whose first is 0-4 (5-9 marks an offline code, see offline.py): 5 x 10^15 possible codes, of
which a few live at any moment, so a guess is hopeless even before the limits below. The server
keeps only a keyed hash (HMAC-SHA256 under the app secret), the card, the expiry (60 s) and when
and by whom it was used.

Spending is one conditional UPDATE (`... WHERE used_at IS NULL AND expires_at > now`), so of two
tills presenting one code at the same moment exactly one wins. It commits before the payment
runs: a payment refused afterwards (insufficient funds, wrong store, PIN) has used the code, and
the app shows a fresh one. A retry of a payment that went through gets CodeAlreadyUsed, which
carries the card, and `pay` replays the first result from its idempotency key.

Against guessing: every terminal or staff member may present 60 codes a minute (the shared rate
limiter) and 10 made-up ones per 10 minutes (failures counted in the database, checked before the
lookup); offline codes also count 5 wrong codes per card per 10 minutes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from domain import clock, config
from domain.actor import Actor, Role
from domain.cards import service as cards
from domain.cards.models import Card
from domain.codes import errors, limits, offline, settings
from domain.codes.models import PaymentCode
from domain.identity.secrets import keyed_hash
from domain.ids import new_id

CodeAlreadyUsed = errors.CodeAlreadyUsed
reserve_daily_amount = limits.reserve_daily_amount
release_daily_amount = limits.release_daily_amount


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime


def code_hash(code: str) -> str:
    return keyed_hash(code, "payment-code")


def well_formed(code: str) -> bool:
    return len(code) == 18 and code.isascii() and code.isdigit() and code[:2] == settings.prefix()


async def create(actor: Actor, card_id: str) -> IssuedCode:
    """A fresh online code for the holder's card, valid 60 seconds, single use."""
    card = await cards.card_for(actor, card_id)
    if actor.role != Role.CONSUMER or card.holder_id != actor.id:
        raise errors.not_card_holder()
    cards.ensure_usable(card)
    limiter = config.get().rate_limiter
    if not await limiter.hit(f"paycode:new:{actor.id}", settings.CREATE_PER_MINUTE, 60):
        raise errors.rate_limited("cardId")
    now = clock.now()
    expires_at = now + timedelta(seconds=settings.CODE_TTL_SECONDS)
    for _ in range(5):
        code = settings.prefix() + f"{secrets.randbelow(5 * 10**15):016d}"
        try:
            await PaymentCode.create(
                id=new_id("pco"),
                code_hash=code_hash(code),
                kind="ONLINE",
                card_id=card.id,
                holder_id=actor.id,
                created_at=now,
                expires_at=expires_at,
            )
        except IntegrityError:
            continue  # the same 16 random digits twice: draw again
        break
    else:
        raise RuntimeError("no fresh payment code after 5 draws")
    # Unused codes are of no interest once dead: the card's own stay few.
    await PaymentCode.filter(
        card_id=card.id, used_at__isnull=True, expires_at__lt=now - timedelta(hours=1)
    ).delete()
    return IssuedCode(code=code, expires_at=expires_at)


async def card_for_code(actor: Actor, code: str) -> Card:
    """The card a presented code pays from; the code is spent by this call."""
    code = code.strip()
    if not well_formed(code):
        raise errors.code_invalid(why="not a Yikatong payment code", why_zh="不是一卡通付款码")
    await limits.check_attempt(actor)
    if offline.is_offline(code):
        card_id = await offline.consume(actor, code)
    else:
        card_id = await _consume_online(actor, code)
    return await cards.get_card(card_id)


async def _consume_online(actor: Actor, code: str) -> str:
    row = await PaymentCode.get_or_none(code_hash=code_hash(code))
    if row is None or row.kind != "ONLINE":
        await limits.record_failure(limits.actor_scope(actor))
        raise errors.code_invalid()
    now = clock.now()
    spent = await PaymentCode.filter(id=row.id, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now, used_by_id=actor.id
    )
    if spent:
        return row.card_id
    fresh = await PaymentCode.get(id=row.id)
    if fresh.used_at is not None:
        raise errors.CodeAlreadyUsed(row.card_id)
    raise errors.code_expired()
