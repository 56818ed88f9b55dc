"""Cards, card products, top-ups, payments and refunds: input -> domain call, and loaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.dataloader import DataLoader

from domain.actor import Actor, Role
from domain.cards import cancellation
from domain.cards import service as cards
from domain.cards.models import Card, CardActivity, CardCancellation, CardProduct
from domain.db import connection
from domain.errors import DomainError, forbidden
from domain.payments import holds, sessions, topups
from domain.payments import service as payments
from domain.payments.models import Hold, Payment, Refund, TopUp
from resolvers.context import Context
from resolvers.pagination import Page, paginate


async def product_create(ctx: Context, data: dict[str, Any]) -> CardProduct:
    return await cards.create_product(ctx.require_viewer(), **data)


async def card_issue(ctx: Context, data: dict[str, Any]) -> Card:
    return await cards.issue_card(ctx.require_viewer(), **data)


async def top_up(ctx: Context, data: dict[str, Any]) -> TopUp:
    return await payments.top_up(ctx.require_viewer(), **data)


async def pay(ctx: Context, data: dict[str, Any]) -> Payment:
    return await payments.pay(ctx.require_viewer(), **data)


async def refund(ctx: Context, data: dict[str, Any], void: bool = False) -> Refund:
    return await payments.refund(ctx.require_viewer(), void=void, **data)


async def void(ctx: Context, payment_id: str, reason: str | None, key: str) -> Refund:
    return await payments.void(
        ctx.require_viewer(), payment_id=payment_id, reason=reason, idempotency_key=key
    )


STATUS_ACTIONS = {
    "freeze": ("FROZEN", "frozen"),
    "unfreeze": ("ACTIVE", "unfrozen"),
    "report_lost": ("LOST", "reported lost"),
}


async def card_status(ctx: Context, card_id: str, action: str) -> Card:
    status, verb = STATUS_ACTIONS[action]
    return await cards.change_status(ctx.require_viewer(), card_id, status, verb)


async def card_replace(ctx: Context, card_id: str, card_uid: str | None, key: str) -> Card:
    return await cards.replace_card(ctx.require_viewer(), card_id, card_uid, key)


async def card_set_pin(ctx: Context, card_id: str, pin: str) -> Card:
    return await cards.set_pin(ctx.require_viewer(), card_id, pin)


async def card_bind_uid(ctx: Context, card_id: str, card_uid: str) -> Card:
    return await cards.bind_uid(ctx.require_viewer(), card_id, card_uid)


async def card(ctx: Context, card_id: str) -> Card | None:
    try:
        return await cards.card_for(ctx.require_viewer(), card_id)
    except DomainError:
        return None


async def my_cards(ctx: Context) -> list[Card]:
    viewer = ctx.require_viewer()
    return await Card.filter(holder_id=viewer.id).order_by("-id").limit(200)


async def payment(ctx: Context, payment_id: str) -> Payment | None:
    try:
        return await payments.get_payment_for(ctx.require_viewer(), payment_id)
    except DomainError:
        return None


async def transactions(
    ctx: Context, card_id: str, first: int | None, after: str | None
) -> Page[CardActivity]:
    return await paginate(CardActivity.filter(card_id=card_id), first, after, ctx.max_page_size)


def balances(ctx: Context) -> DataLoader[str, cards.Balances]:
    loader = ctx.loaders.get("card_balances")
    if loader is None:

        async def load(ids: list[str]) -> list[cards.Balances]:
            got = await cards.balances_of(connection(), ids)
            return [got[i] for i in ids]

        loader = DataLoader(load_fn=load)
        ctx.loaders["card_balances"] = loader
    return loader  # type: ignore[no-any-return,unused-ignore]


async def card_by_id(ctx: Context, card_id: str) -> Card:
    loader = ctx.loaders.get("cards")
    if loader is None:

        async def load(ids: list[str]) -> list[Card]:
            rows = {c.id: c for c in await Card.filter(id__in=ids)}
            return [rows[i] for i in ids]

        loader = DataLoader(load_fn=load)
        ctx.loaders["cards"] = loader
    return await loader.load(card_id)  # type: ignore[no-any-return,unused-ignore]


async def payment_by_id(payment_id: str) -> Payment:
    return await Payment.get(id=payment_id)


def may_watch_card(viewer: Actor, card: Card) -> bool:
    """The holder, or the issuing merchant's staff; nobody else hears a card's balance."""
    if viewer.role == Role.CONSUMER:
        return card.holder_id == viewer.id
    return viewer.role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) and (
        viewer.merchant_id == card.merchant_id
    )


async def balance_events(ctx: Context, card_id: str) -> AsyncIterator[dict[str, Any]]:
    viewer = ctx.require_viewer()
    found = await Card.get_or_none(id=card_id)
    if found is None or not may_watch_card(viewer, found):
        raise forbidden("You may not watch this card")
    seen: set[int] = set()
    async for message in ctx.broker.subscribe(f"card:{card_id}"):
        # The relay publishes at least once; the event id makes delivery exactly once.
        event_id = int(message.get("eventId", 0))
        if event_id in seen:
            continue
        seen.add(event_id)
        if len(seen) > 10_000:
            seen.clear()
        yield message


async def session_redeem(ctx: Context, data: dict[str, Any]) -> Payment:
    return await sessions.redeem(ctx.require_viewer(), **data)


async def hold_create(ctx: Context, data: dict[str, Any]) -> Hold:
    return await holds.hold(ctx.require_viewer(), **data)


async def hold_capture(ctx: Context, hold_id: str, amount: int, key: str) -> Hold:
    return await holds.capture(
        ctx.require_viewer(), hold_id=hold_id, amount=amount, idempotency_key=key
    )


async def hold_release(ctx: Context, hold_id: str) -> Hold:
    return await holds.release(ctx.require_viewer(), hold_id=hold_id)


async def hold(ctx: Context, hold_id: str) -> Hold | None:
    try:
        return await holds.get_hold_for(ctx.require_viewer(), hold_id)
    except DomainError:
        return None


async def top_up_by_id(ctx: Context, top_up_id: str) -> TopUp | None:
    return await topups.get_top_up_for(ctx.require_viewer(), top_up_id)


async def cancellation_request(ctx: Context, data: dict[str, Any]) -> CardCancellation:
    return await cancellation.request(ctx.require_viewer(), **data)


async def cancellation_approve(ctx: Context, cancellation_id: str) -> CardCancellation:
    return await cancellation.approve(ctx.require_viewer(), cancellation_id=cancellation_id)


async def cancellation_reject(ctx: Context, cancellation_id: str, note: str) -> CardCancellation:
    return await cancellation.reject(
        ctx.require_viewer(), cancellation_id=cancellation_id, note=note
    )


async def cancellation_by_id(ctx: Context, cancellation_id: str) -> CardCancellation | None:
    try:
        return await cancellation.get_for(ctx.require_viewer(), cancellation_id)
    except DomainError:
        return None


async def merchant_cancellations(
    ctx: Context, merchant_id: str, status: str | None
) -> list[CardCancellation]:
    viewer = ctx.require_viewer()
    if not viewer.is_admin_of(merchant_id):
        raise forbidden("Not your merchant")
    query = CardCancellation.filter(merchant_id=merchant_id)
    if status:
        query = query.filter(status=status)
    return await query.order_by("-created_at").limit(200)


async def bank_transfer_confirm(ctx: Context, top_up_id: str, amount: int, reference: str) -> TopUp:
    return await topups.confirm_bank_transfer(
        ctx.require_viewer(), top_up_id=top_up_id, amount=amount, bank_reference=reference
    )
