"""Two-phase card payments (预授权): hold, then capture part or all, or release, or expire.

A hold moves the money out of the card's principal/bonus (in the product's spending order) into
the hold's own ledger account, so it can be neither spent twice nor lost: the card's balance
drops at once, and the money comes back when the hold is released or expires. Capturing moves
the captured part to the merchant as an ordinary Payment (refundable like any other) and returns
the rest to the card, in one transfer. Expiry is judged by the database's clock. Bookings and
orders build on this.
"""

from __future__ import annotations

from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.actor import STAFF_ROLES, Actor, Role
from domain.cards import service as cards
from domain.cards.models import Card
from domain.codes.errors import CodeAlreadyUsed
from domain.db import connection, db_now, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.ids import has_prefix, new_id
from domain.ledger import service as ledger
from domain.payments import errors
from domain.payments.models import Hold, Payment
from domain.payments.service import (
    check_card_at_store,
    current_card,
    presented_card,
    spend_postings,
    split_spend,
    take_allowances,
)

DEFAULT_TTL = timedelta(days=7)
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(days=30)
PENDING = "PENDING"


def _ttl(expires_in_seconds: int | None) -> timedelta:
    if expires_in_seconds is None:
        return DEFAULT_TTL
    ttl = timedelta(seconds=expires_in_seconds)
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise invalid_input(
            "expiresInSeconds",
            "预授权有效期须为 1 分钟至 30 天",
            "A hold lasts between 1 minute and 30 days",
        )
    return ttl


async def hold(
    actor: Actor,
    *,
    store_id: str,
    amount: int,
    idempotency_key: str,
    card_id: str | None = None,
    payment_code: str | None = None,
    card_uid: str | None = None,
    pin: str | None = None,
    expires_in_seconds: int | None = None,
    reference: str | None = None,
) -> Hold:
    """Set `amount` aside on a card for a later capture at `store_id`."""
    cards.check_amount(amount)
    ttl = _ttl(expires_in_seconds)
    if reference is not None and not 0 < len(reference) <= 40:
        raise invalid_input("reference", "关联单号最多 40 个字符", "reference is 1-40 characters")
    try:
        card, store_merchant = await presented_card(
            actor, store_id, card_id, payment_code, card_uid
        )
    except CodeAlreadyUsed as used:
        # The retry of the hold that spent the code replays it.
        again = {"storeId": store_id, "amount": amount, "cardId": used.card_id}
        done = await ledger.find_idempotent_result(
            connection(),
            scope=actor.id,
            key=idempotency_key,
            operation="hold",
            request={**again, "reference": reference},
        )
        if done is not None:
            return await Hold.get(id=done)
        raise
    request = {"storeId": store_id, "amount": amount, "cardId": card.id, "reference": reference}
    try:
        product = await check_card_at_store(
            card, store_merchant, action="a hold", pin=pin, value=lambda _: amount
        )
        retried = card_uid is not None and bool(
            await ledger.find_idempotent_result(
                connection(), scope=actor.id, key=idempotency_key, operation="hold", request=request
            )
        )
        taken = await take_allowances(
            card, amount, pin, payment_code=payment_code, card_uid=card_uid, replay=retried
        )
    except DomainError:
        done = await ledger.find_idempotent_result(
            connection(), scope=actor.id, key=idempotency_key, operation="hold", request=request
        )
        if done is not None:
            return await Hold.get(id=done)
        raise
    hold_id = new_id("hld")
    principal_acc = ledger.account_id(card.id, ledger.CARD_PRINCIPAL)
    bonus_acc = ledger.account_id(card.id, ledger.CARD_BONUS)
    try:
        async with transaction() as conn:
            replay = await ledger.claim_idempotency_key(
                conn,
                scope=actor.id,
                key=idempotency_key,
                operation="hold",
                request=request,
                result_id=hold_id,
            )
            if replay is not None:
                return await Hold.filter(id=replay).using_db(conn).get()
            now = await db_now(conn)
            bal = await ledger.lock_balances(conn, [bonus_acc, principal_acc])
            debits, from_principal, from_bonus = spend_postings(
                bal, card.id, amount, product.bonus_first
            )
            await ledger.open_accounts(conn, [ledger.hold_account(hold_id)])
            postings = [(ledger.hold_account(hold_id).ids()[0], amount), *debits]
            posted = await ledger.post(
                conn, kind="HOLD", asset=ledger.FEN, postings=postings, reference=hold_id
            )
            result = await Hold.create(
                using_db=conn,
                id=hold_id,
                card_id=card.id,
                merchant_id=card.merchant_id,
                store_id=store_id,
                amount=amount,
                principal_amount=from_principal,
                bonus_amount=from_bonus,
                status=PENDING,
                reference=reference,
                expires_at=now + ttl,
                transfer_id=posted.transfer_id,
                actor_id=actor.id,
                created_at=now,
            )
            await cards.record_activity(
                conn,
                card_id=card.id,
                transfer_id=posted.transfer_id,
                kind="HOLD",
                delta=-amount,
                balance_after=bal.get(principal_acc, 0) + bal.get(bonus_acc, 0) - amount,
                store_id=store_id,
                reference=hold_id,
                reason="HOLD",
            )
    except DomainError:
        await taken.give_back()  # nothing was held: the day's allowances are free again
        raise
    return result


async def get_hold_for(actor: Actor, hold_id: str) -> Hold:
    """A hold the actor may see: the merchant's staff at its store, the card holder, operators."""
    found = await Hold.get_or_none(id=hold_id) if has_prefix(hold_id, "hld") else None
    if found is None:
        raise errors.hold_not_found()
    if actor.role == Role.OPERATOR or actor.can_act_at_store(found.merchant_id, found.store_id):
        return found
    if actor.role == Role.CONSUMER:
        card = await Card.get_or_none(id=found.card_id)
        if card is not None and card.holder_id == actor.id:
            return found
    raise errors.hold_not_found()


async def _merchant_hold(actor: Actor, hold_id: str) -> Hold:
    found = await get_hold_for(actor, hold_id)
    if actor.role not in STAFF_ROLES and actor.role != Role.TERMINAL:
        raise forbidden("Holds are captured and released by the merchant")
    return found


async def _locked(conn: BaseDBAsyncClient, hold_id: str) -> Hold:
    query = Hold.filter(id=hold_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    found = await query.first()
    assert found is not None
    return found


class _Expired(Exception):
    """Raised inside a capture's transaction so it rolls back before the hold is expired."""


async def capture(actor: Actor, *, hold_id: str, amount: int, idempotency_key: str) -> Hold:
    """Take `amount` (at most the hold) as a payment; the rest goes back to the card."""
    cards.check_amount(amount)
    await _merchant_hold(actor, hold_id)
    request = {"holdId": hold_id, "amount": amount}
    payment_id = new_id("pay")
    try:
        async with transaction() as conn:
            replay = await ledger.claim_idempotency_key(
                conn,
                scope=actor.id,
                key=idempotency_key,
                operation="holdCapture",
                request=request,
                result_id=hold_id,
            )
            if replay is not None:
                return await Hold.filter(id=replay).using_db(conn).get()
            now = await db_now(conn)
            current = await _locked(conn, hold_id)
            if current.status != PENDING:
                raise errors.hold_not_pending(current.status)
            if current.expires_at <= now:
                raise _Expired
            if amount > current.amount:
                raise errors.capture_exceeds_hold()
            product = await cards.cached_product(
                (await Card.filter(id=current.card_id).using_db(conn).get()).product_id
            )
            took_principal, took_bonus = split_spend(
                current.principal_amount, current.bonus_amount, amount, product.bonus_first
            )
            back_principal = current.principal_amount - took_principal
            back_bonus = current.bonus_amount - took_bonus
            holder_card = await current_card(conn, current.card_id)
            held_acc = ledger.hold_account(hold_id).ids()[0]
            # Two transfers: the payment itself (so the Payment matches its transfer, and a
            # refund or void reverses exactly it), then the uncaptured rest back to the card.
            posted = await ledger.post(
                conn,
                kind="PAYMENT",
                asset=ledger.FEN,
                postings=[
                    (held_acc, -amount),
                    (ledger.hot_account(current.merchant_id, ledger.MERCHANT_RECEIVABLE), amount),
                ],
                reference=payment_id,
            )
            settled = posted.transfer_id
            back = [
                (ledger.account_id(holder_card, ledger.CARD_PRINCIPAL), back_principal),
                (ledger.account_id(holder_card, ledger.CARD_BONUS), back_bonus),
            ]
            back = [(acc, amt) for acc, amt in back if amt]
            if back:
                returned = await ledger.post(
                    conn,
                    kind="HOLD_RELEASED",
                    asset=ledger.FEN,
                    postings=[(held_acc, -(back_principal + back_bonus)), *back],
                    reference=hold_id,
                )
                settled = returned.transfer_id
            await Payment.create(
                using_db=conn,
                id=payment_id,
                card_id=current.card_id,
                merchant_id=current.merchant_id,
                store_id=current.store_id,
                amount=amount,
                principal_amount=took_principal,
                bonus_amount=took_bonus,
                status="SUCCEEDED",
                transfer_id=posted.transfer_id,
                actor_id=actor.id,
                created_at=clock.now(),
            )
            await (
                Hold.filter(id=hold_id)
                .using_db(conn)
                .update(
                    status="CAPTURED",
                    captured_amount=amount,
                    payment_id=payment_id,
                    settle_transfer_id=settled,
                    settled_at=now,
                )
            )
            await _statement_line(conn, current, holder_card, settled, "HOLD_CAPTURE", amount)
    except _Expired:
        await expire(hold_id)
        raise errors.hold_expired() from None
    return await Hold.get(id=hold_id)


async def _statement_line(
    conn: BaseDBAsyncClient,
    current: Hold,
    holder_card: str,
    transfer_id: str,
    kind: str,
    captured: int,
) -> None:
    after = await ledger.balances(
        conn,
        [ledger.account_id(holder_card, k) for k in (ledger.CARD_PRINCIPAL, ledger.CARD_BONUS)],
    )
    await cards.record_activity(
        conn,
        card_id=holder_card,
        transfer_id=transfer_id,
        kind=kind,
        delta=current.amount - captured,
        balance_after=sum(after.values()),
        store_id=current.store_id,
        reference=current.id,
        reason=kind,
    )


async def _give_back(hold_id: str, status: str) -> Hold:
    """Return a pending hold's money to the card (RELEASED by staff, or EXPIRED when due)."""
    async with transaction() as conn:
        now = await db_now(conn)
        current = await _locked(conn, hold_id)
        if current.status != PENDING or (status == "EXPIRED" and current.expires_at > now):
            return current
        holder_card = await current_card(conn, current.card_id)
        postings = [(ledger.hold_account(hold_id).ids()[0], -current.amount)]
        if current.principal_amount:
            postings.append(
                (ledger.account_id(holder_card, ledger.CARD_PRINCIPAL), current.principal_amount)
            )
        if current.bonus_amount:
            postings.append(
                (ledger.account_id(holder_card, ledger.CARD_BONUS), current.bonus_amount)
            )
        posted = await ledger.post(
            conn,
            kind=f"HOLD_{status}",
            asset=ledger.FEN,
            postings=postings,
            reference=hold_id,
            reverses_id=current.transfer_id,
        )
        await (
            Hold.filter(id=hold_id)
            .using_db(conn)
            .update(status=status, settle_transfer_id=posted.transfer_id, settled_at=now)
        )
        await _statement_line(conn, current, holder_card, posted.transfer_id, f"HOLD_{status}", 0)
        current.status = status
    return current


async def release(actor: Actor, *, hold_id: str) -> Hold:
    """Give the whole hold back (the service was not delivered). Releasing twice is harmless."""
    await _merchant_hold(actor, hold_id)
    result = await _give_back(hold_id, "RELEASED")
    if result.status == "CAPTURED":
        raise errors.hold_not_pending(result.status)
    return await Hold.get(id=hold_id)


async def expire(hold_id: str) -> Hold:
    return await _give_back(hold_id, "EXPIRED")


async def expire_due(limit: int = 500) -> int:
    """Expire pending holds past their time by the database clock; returns how many."""
    conn = connection()
    now = await db_now(conn)
    due = await (
        Hold.filter(status=PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    expired = 0
    for hold_id in due:
        if (await expire(str(hold_id))).status == "EXPIRED":
            expired += 1
    return expired
