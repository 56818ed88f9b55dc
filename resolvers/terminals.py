"""Terminal lifecycle, terminal charges, reader taps and DESFire relays: input -> domain call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from domain.errors import DomainError, forbidden
from domain.merchants import service as merchants
from domain.merchants.models import Terminal
from domain.payments.models import Payment
from domain.terminals import charges, keystore, taps, uid_guard
from domain.terminals.models import TerminalCharge
from resolvers.context import Context


async def heartbeat(ctx: Context, app_version: str | None, reader_status: str | None) -> Terminal:
    return await merchants.heartbeat(ctx.require_viewer(), app_version, reader_status)


def desfire_application() -> keystore.DesfireApplication | None:
    store = keystore.get()
    return store.application if store is not None else None


async def key_rotate(ctx: Context, terminal_id: str) -> merchants.RegisteredTerminal:
    return await merchants.rotate_terminal_key(ctx.require_viewer(), terminal_id)


async def revoke(ctx: Context, terminal_id: str) -> Terminal:
    return await merchants.revoke_terminal(ctx.require_viewer(), terminal_id)


async def terminals(ctx: Context, merchant_id: str, store_id: str | None) -> list[Terminal]:
    return await merchants.list_terminals(ctx.require_viewer(), merchant_id, store_id)


async def charge_create(ctx: Context, amount: int, idempotency_key: str) -> TerminalCharge:
    return await charges.create(
        ctx.require_viewer(), amount=amount, idempotency_key=idempotency_key
    )


async def charge_cancel(ctx: Context, charge_id: str) -> TerminalCharge:
    return await charges.cancel(ctx.require_viewer(), charge_id)


async def charge_confirm_pin(ctx: Context, charge_id: str, pin: str) -> TerminalCharge:
    return await charges.confirm_pin(ctx.require_viewer(), charge_id, pin)


async def charge(ctx: Context, charge_id: str) -> TerminalCharge | None:
    try:
        return await charges.get_for(ctx.require_viewer(), charge_id)
    except DomainError:
        return None


async def payment_of(payment_id: str) -> Payment:
    return await Payment.get(id=payment_id)


async def reader_tap(ctx: Context, data: dict[str, Any]) -> taps.TapResult:
    return await taps.reader_tap(ctx.require_viewer(), **data)


async def desfire_auth(ctx: Context, uid: str, card_challenge: str) -> taps.DesfireChallenge:
    return await taps.begin_desfire_auth(
        ctx.require_viewer(), uid=uid, card_challenge=card_challenge
    )


async def tap_policy_set(ctx: Context, data: dict[str, Any]) -> uid_guard.Policy:
    return await uid_guard.set_policy(ctx.require_viewer(), **data)


async def tap_policy(ctx: Context, product_id: str) -> uid_guard.Policy | None:
    try:
        return await uid_guard.policy_for_actor(ctx.require_viewer(), product_id)
    except DomainError:
        return None


POLL_SECONDS = 2.0


def _signature(event: dict[str, Any]) -> tuple[Any, ...]:
    error = event.get("error") or {}
    return (event.get("status"), event.get("paymentId"), error.get("code"))


async def charge_events(ctx: Context, charge_id: str) -> AsyncIterator[dict[str, Any]]:
    """A charge's changes, for its terminal (the tablet) and the staff of its store.

    The current state comes first. Events come from the outbox through the broker; the charge is
    also read again every POLL_SECONDS, which covers an event published before the subscription
    reached the broker and the expiry (judged when a charge is read). Each state is told once,
    and the stream ends when the charge stops waiting.
    """
    viewer = ctx.require_viewer()
    try:
        await charges.get_for(viewer, charge_id)
    except DomainError as exc:
        raise forbidden("You may not watch this charge") from exc
    messages = ctx.broker.subscribe(charges.channel(charge_id)).__aiter__()
    next_message: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(messages.__anext__())
    try:
        event = charges.event_of(await charges.get_for(viewer, charge_id))
        told = None
        while True:
            if _signature(event) != told:
                told = _signature(event)
                yield event
            if event.get("status") != charges.PENDING:
                return
            done, _ = await asyncio.wait({next_message}, timeout=POLL_SECONDS)
            if done:
                event = next_message.result()
                next_message = asyncio.ensure_future(messages.__anext__())
            else:
                event = charges.event_of(await charges.get_for(viewer, charge_id))
    finally:
        next_message.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await next_message
        aclose = getattr(messages, "aclose", None)
        if aclose is not None:
            await aclose()
