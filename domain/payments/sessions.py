"""Redeeming sessions of a session card (次卡核销).

A session card holds two balances: sessions (SESSIONS) and the prepaid money not yet used up
(its principal, FEN). Redeeming n of the s remaining sessions moves n sessions and
floor(principal * n / s) fen to the merchant, the last session taking whatever is left, so the
money of a card always runs out exactly with its sessions and each session is worth at least
one fen (a pack's price is at least its count). The result is a Payment with `sessions` set, so
refunds, voids and statements work as for money.
"""

from __future__ import annotations

from domain import clock
from domain.actor import Actor
from domain.cards import errors as card_errors
from domain.cards import service as cards
from domain.cards.models import CardProduct
from domain.codes.errors import CodeAlreadyUsed
from domain.db import transaction
from domain.errors import DomainError, invalid_input
from domain.ids import new_id
from domain.ledger import service as ledger
from domain.payments.models import Payment
from domain.payments.service import (
    check_card_at_store,
    presented_card,
    replay_payment,
    take_allowances,
)

MAX_SESSIONS_AT_ONCE = 100


def session_money(principal: int, remaining: int, sessions: int) -> int:
    """The fen that `sessions` of `remaining` sessions take from `principal`."""
    if sessions == remaining:
        return principal
    return principal * sessions // remaining


def nominal(product: CardProduct, sessions: int) -> int:
    """The list price of `sessions` sessions of this product, in fen."""
    return sessions * (product.session_price or 0) // (product.session_count or 1)


async def redeem(
    actor: Actor,
    *,
    store_id: str,
    sessions: int,
    idempotency_key: str,
    card_id: str | None = None,
    payment_code: str | None = None,
    card_uid: str | None = None,
    pin: str | None = None,
) -> Payment:
    if not 1 <= sessions <= MAX_SESSIONS_AT_ONCE:
        raise invalid_input(
            "sessions",
            f"每次核销 1-{MAX_SESSIONS_AT_ONCE} 次",
            f"Redeem between 1 and {MAX_SESSIONS_AT_ONCE} sessions at once",
        )
    try:
        card, store_merchant = await presented_card(
            actor, store_id, card_id, payment_code, card_uid
        )
    except CodeAlreadyUsed as used:
        # The retry of the redemption that spent the code replays it.
        again = {"storeId": store_id, "sessions": sessions, "cardId": used.card_id}
        existing = await replay_payment(actor, idempotency_key, "sessionRedeem", again)
        if existing is not None:
            return existing
        raise
    request = {"storeId": store_id, "sessions": sessions, "cardId": card.id}
    try:
        product = await check_card_at_store(
            card,
            store_merchant,
            action="sessionRedeem",
            pin=pin,
            value=lambda product: nominal(product, sessions),
            sessions=True,
        )
        retried = card_uid is not None and bool(
            await replay_payment(actor, idempotency_key, "sessionRedeem", request)
        )
        # The limits of codes and UID cards count the sessions' price (the money they will
        # take is only known under the card's lock).
        taken = await take_allowances(
            card,
            nominal(product, sessions),
            pin,
            payment_code=payment_code,
            card_uid=card_uid,
            replay=retried,
        )
    except DomainError:
        existing = await replay_payment(actor, idempotency_key, "sessionRedeem", request)
        if existing is not None:
            return existing
        raise
    payment_id = new_id("pay")
    principal_acc = ledger.account_id(card.id, ledger.CARD_PRINCIPAL)
    sessions_acc = ledger.account_id(card.id, ledger.CARD_SESSIONS)
    try:
        async with transaction() as conn:
            replay = await ledger.claim_idempotency_key(
                conn,
                scope=actor.id,
                key=idempotency_key,
                operation="sessionRedeem",
                request=request,
                result_id=payment_id,
            )
            if replay is not None:
                return await Payment.filter(id=replay).using_db(conn).get()
            # Locked, so the share of money is computed on the balances the debits will see.
            held = await ledger.lock_balances(conn, [principal_acc, sessions_acc])
            remaining, principal = held.get(sessions_acc, 0), held.get(principal_acc, 0)
            if remaining < sessions:
                raise card_errors.insufficient_sessions()
            money = session_money(principal, remaining, sessions)
            if money <= 0:  # cannot happen while every session is worth at least one fen
                raise RuntimeError(f"session card {card.id} has sessions but no money")
            shard = ledger.hot_account
            posted = await ledger.post(
                conn,
                kind="PAYMENT",
                asset=ledger.FEN,
                postings=[
                    (principal_acc, -money),
                    (shard(card.merchant_id, ledger.MERCHANT_RECEIVABLE), money),
                ],
                reference=payment_id,
            )
            counted = await ledger.post(
                conn,
                kind="PAYMENT",
                asset=ledger.SESSIONS,
                postings=[
                    (sessions_acc, -sessions),
                    (shard(card.merchant_id, ledger.MERCHANT_SESSIONS_ISSUED), sessions),
                ],
                reference=payment_id,
            )
            payment = await Payment.create(
                using_db=conn,
                id=payment_id,
                card_id=card.id,
                merchant_id=card.merchant_id,
                store_id=store_id,
                amount=money,
                principal_amount=money,
                bonus_amount=0,
                sessions=sessions,
                session_transfer_id=counted.transfer_id,
                status="SUCCEEDED",
                transfer_id=posted.transfer_id,
                actor_id=actor.id,
                created_at=clock.now(),
            )
            await cards.record_activity(
                conn,
                card_id=card.id,
                transfer_id=posted.transfer_id,
                kind="PAYMENT",
                delta=-money,
                balance_after=posted.balances[principal_acc],
                store_id=store_id,
                reference=payment_id,
                reason="SESSION_REDEEM",
                sessions=-sessions,
                sessions_after=counted.balances[sessions_acc],
            )
    except DomainError:
        await taken.give_back()
        raise
    return payment
