"""Terminal charges: staff enter an amount on the tablet; the next card tapped on the store's
reader pays it (domain/terminals/taps.py).

A charge is PENDING until it is paid (SUCCEEDED), cancelled (CANCELLED) or its time runs out
(EXPIRED, judged when it is read). A refused tap (insufficient funds, a PIN needed) leaves it
PENDING with `last_error`, so the customer can try again or the tablet can send the PIN
(`confirm_pin`). Every change writes a `TERMINAL_CHARGE` event to the outbox
(channel `terminal-charge:<id>`), which the relay publishes for `terminalChargeUpdated`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from domain import clock
from domain.actor import STAFF_ROLES, Actor, Role
from domain.cards import errors as card_errors
from domain.cards import service as cards
from domain.db import transaction
from domain.errors import DomainError
from domain.ids import has_prefix, new_id
from domain.ledger import errors as ledger_errors
from domain.ledger.models import IdempotencyKey
from domain.merchants.service import live_terminal
from domain.outbox import service as outbox
from domain.payments import service as payments
from domain.payments.models import Payment
from domain.terminals import errors
from domain.terminals.models import TerminalCharge

CHARGE_TTL_SECONDS = 120
MAX_PENDING = 10
PENDING = "PENDING"
# Refusals the customer can cure by typing the card's PIN on the tablet (confirm_pin).
PIN_ERRORS = ("UID_PIN_REQUIRED", "INVALID_PIN")


def channel(charge_id: str) -> str:
    return f"terminal-charge:{charge_id}"


def payment_key(charge: TerminalCharge) -> str:
    """The idempotency key (terminal's scope) of the payment that settles this charge: however
    many taps arrive, or however often one is reported, the charge is paid at most once."""
    return f"tch:{charge.id}"


def error_dict(error: DomainError) -> dict[str, Any]:
    return {"code": error.code, "zh": error.zh, "en": error.en, "field": error.field}


def event_of(charge: TerminalCharge) -> dict[str, Any]:
    return {
        "kind": "TERMINAL_CHARGE",
        "chargeId": charge.id,
        "terminalId": charge.terminal_id,
        "status": charge.status,
        "amount": charge.amount,
        "paymentId": charge.payment_id,
        "error": charge.last_error,
        "at": clock.now().isoformat(),
    }


async def _emit(conn: BaseDBAsyncClient, charge: TerminalCharge) -> None:
    await outbox.emit(conn, channel(charge.id), event_of(charge))


async def create(actor: Actor, *, amount: int, idempotency_key: str) -> TerminalCharge:
    """The tablet asks for `amount`; the same key and amount return the same charge."""
    terminal = await live_terminal(actor)
    cards.check_amount(amount)
    if not 8 <= len(idempotency_key) <= 100:
        raise ledger_errors.invalid_idempotency_key()
    existing = await TerminalCharge.get_or_none(
        terminal_id=terminal.id, idempotency_key=idempotency_key
    )
    if existing is not None:
        return await _same_request(existing, amount)
    now = clock.now()
    waiting = await TerminalCharge.filter(
        terminal_id=terminal.id, status=PENDING, expires_at__gt=now
    ).count()
    if waiting >= MAX_PENDING:
        raise errors.too_many_pending()
    try:
        async with transaction() as conn:
            charge = await TerminalCharge.create(
                using_db=conn,
                id=new_id("tch"),
                terminal_id=terminal.id,
                merchant_id=terminal.merchant_id,
                store_id=terminal.store_id,
                amount=amount,
                idempotency_key=idempotency_key,
                status=PENDING,
                created_at=now,
                expires_at=now + timedelta(seconds=CHARGE_TTL_SECONDS),
            )
            await _emit(conn, charge)
    except IntegrityError:  # the same request, concurrently
        existing = await TerminalCharge.get(
            terminal_id=terminal.id, idempotency_key=idempotency_key
        )
        return await _same_request(existing, amount)
    return charge


async def _same_request(charge: TerminalCharge, amount: int) -> TerminalCharge:
    if charge.amount != amount:
        raise ledger_errors.idempotency_key_reused()
    return await refreshed(charge)


async def get_for(actor: Actor, charge_id: str) -> TerminalCharge:
    """A charge the actor may see: its terminal, staff of its store, operators."""
    charge = (
        await TerminalCharge.get_or_none(id=charge_id) if has_prefix(charge_id, "tch") else None
    )
    if charge is None or not may_see(actor, charge):
        raise errors.charge_not_found()
    return await refreshed(charge)


def may_see(actor: Actor, charge: TerminalCharge) -> bool:
    if actor.role == Role.TERMINAL:
        return actor.id == charge.terminal_id
    if actor.role in STAFF_ROLES:
        return actor.can_act_at_store(charge.merchant_id, charge.store_id)
    return actor.role == Role.OPERATOR


async def refreshed(charge: TerminalCharge) -> TerminalCharge:
    """The charge as it stands now: a payment made for it that was not yet recorded (a crash
    between the two) is recorded; a PENDING charge past its time becomes EXPIRED."""
    if charge.status in (PENDING, "EXPIRED", "CANCELLED") and charge.payment_id is None:
        paid = await _payment_made_for(charge)
        if paid is not None:
            return await complete(charge, paid)
    if charge.status == PENDING and charge.expires_at <= clock.now():
        return await _finish(charge, "EXPIRED")
    return charge


async def _payment_made_for(charge: TerminalCharge) -> Payment | None:
    row = await IdempotencyKey.filter(
        scope=charge.terminal_id, key=payment_key(charge), operation="pay"
    ).first()
    return await Payment.get_or_none(id=row.result_id) if row is not None else None


async def oldest_pending(terminal_id: str, tapped_at: datetime) -> TerminalCharge | None:
    """The charge a tap at `tapped_at` pays: the terminal's oldest one still waiting that was
    entered before the tap (a tap queued by the bridge while the API was unreachable never pays
    a charge entered after it)."""
    now = clock.now()
    return (
        await TerminalCharge.filter(
            terminal_id=terminal_id,
            status=PENDING,
            expires_at__gt=now,
            created_at__lte=tapped_at + TAP_GRACE,
        )
        .order_by("created_at", "id")
        .first()
    )


TAP_GRACE = timedelta(seconds=2)  # the bridge's clock measures the tap's age, not its time


async def complete(charge: TerminalCharge, payment: Payment) -> TerminalCharge:
    """Record the payment. It is the truth about the money, so it wins even over a cancel or
    an expiry recorded meanwhile."""
    now = clock.now()
    async with transaction() as conn:
        changed = (
            await TerminalCharge.filter(id=charge.id, payment_id__isnull=True)
            .using_db(conn)
            .update(
                status="SUCCEEDED",
                payment_id=payment.id,
                card_id=payment.card_id,
                last_error=None,
                completed_at=now,
            )
        )
        fresh = await TerminalCharge.filter(id=charge.id).using_db(conn).get()
        if changed:
            await _emit(conn, fresh)
    return fresh


async def record_refusal(
    charge: TerminalCharge, error: DomainError, card_id: str | None
) -> TerminalCharge:
    """A tap was refused: the charge keeps waiting and says why (and, when the PIN is what is
    missing, which card to confirm it for)."""
    async with transaction() as conn:
        changed = (
            await TerminalCharge.filter(id=charge.id, status=PENDING)
            .using_db(conn)
            .update(last_error=error_dict(error), card_id=card_id)
        )
        fresh = await TerminalCharge.filter(id=charge.id).using_db(conn).get()
        if changed:
            await _emit(conn, fresh)
    return fresh


async def _finish(charge: TerminalCharge, status: str) -> TerminalCharge:
    async with transaction() as conn:
        changed = (
            await TerminalCharge.filter(id=charge.id, status=PENDING, payment_id__isnull=True)
            .using_db(conn)
            .update(status=status, completed_at=clock.now())
        )
        fresh = await TerminalCharge.filter(id=charge.id).using_db(conn).get()
        if changed:
            await _emit(conn, fresh)
    return fresh


async def cancel(actor: Actor, charge_id: str) -> TerminalCharge:
    charge = await get_for(actor, charge_id)
    if actor.role == Role.TERMINAL:
        await live_terminal(actor)
    if charge.status != PENDING:
        raise errors.charge_not_pending(charge.status)
    fresh = await _finish(charge, "CANCELLED")
    if fresh.status != "CANCELLED":
        raise errors.charge_not_pending(fresh.status)
    return fresh


async def confirm_pin(actor: Actor, charge_id: str, pin: str) -> TerminalCharge:
    """The tap was refused for want of the PIN (UID_PIN_REQUIRED); the customer typed it on the
    tablet: pay the charge with the card that was tapped, checking the PIN."""
    await live_terminal(actor)
    charge = await get_for(actor, charge_id)
    if charge.status != PENDING:
        raise errors.charge_not_pending(charge.status)
    error = charge.last_error or {}
    if charge.card_id is None or error.get("code") not in PIN_ERRORS:
        raise errors.no_tapped_card()
    card = await cards.get_card(charge.card_id)
    if card.pin_hash is None:
        raise card_errors.pin_required()
    try:
        payment = await payments.pay(
            actor,
            store_id=charge.store_id,
            amount=charge.amount,
            idempotency_key=payment_key(charge),
            card_id=card.id,
            pin=pin,
        )
    except DomainError as exc:
        await record_refusal(charge, exc, card.id if exc.code in PIN_ERRORS else None)
        raise
    return await complete(charge, payment)
