"""Paying with a card, refunds, same-day voids and counter top-ups.

Each is one database transaction: idempotency key, conditional debits, credits, entries, the
business row, the card statement line and the outbox event commit together or not at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock, config
from domain.actor import STAFF_ROLES, Actor, Role
from domain.cards import errors as card_errors
from domain.cards import service as cards
from domain.cards.models import Card, CardProduct
from domain.codes import service as codes
from domain.counter import service as counter
from domain.db import connection, is_postgres, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.escrow import service as escrow
from domain.ids import has_prefix, new_id
from domain.ledger import errors as ledger_errors
from domain.ledger import service as ledger
from domain.merchants.service import get_merchant, get_store
from domain.payments import errors
from domain.payments.models import Payment, Refund, TopUp
from domain.sql import fetch
from domain.terminals import uid_guard

TOP_UP_CHANNELS = ("CASH", "BANK_CARD", "BANK_TRANSFER", "WECHAT_PAY", "ALIPAY")


def split_spend(
    balance_principal: int, balance_bonus: int, amount: int, bonus_first: bool
) -> tuple[int, int]:
    """How much of a payment comes from principal and from bonus (the product's order)."""
    if bonus_first:
        bonus = min(balance_bonus, amount)
        return amount - bonus, bonus
    principal = min(balance_principal, amount)
    return principal, amount - principal


def spend_postings(
    balances: dict[str, int], card_id: str, amount: int, bonus_first: bool
) -> tuple[list[tuple[str, int]], int, int]:
    """The debits that take `amount` from a card in the product's spending order, with how
    much comes from principal and from bonus. INSUFFICIENT_FUNDS when the card lacks it."""
    principal_acc = ledger.account_id(card_id, ledger.CARD_PRINCIPAL)
    bonus_acc = ledger.account_id(card_id, ledger.CARD_BONUS)
    has_principal, has_bonus = balances.get(principal_acc, 0), balances.get(bonus_acc, 0)
    from_principal, from_bonus = split_spend(has_principal, has_bonus, amount, bonus_first)
    if from_principal > has_principal or from_bonus > has_bonus:
        raise ledger_errors.insufficient_funds()
    debits = [
        (acc, -part)
        for acc, part in ((principal_acc, from_principal), (bonus_acc, from_bonus))
        if part
    ]
    return debits, from_principal, from_bonus


async def check_card_at_store(
    card: Card,
    store_merchant: str,
    *,
    action: str,
    pin: str | None,
    value: Callable[[CardProduct], int],
    sessions: bool = False,
) -> CardProduct:
    """What every charge of a presented card checks: the store is its merchant's, the card
    is of the right kind (session cards redeem sessions, others pay money) and usable, and the
    PIN above the product's threshold of `value` (or whenever one is given)."""
    if card.merchant_id != store_merchant:
        raise errors.wrong_store()
    if sessions and card.kind != "SESSION":
        raise card_errors.kind_not_supported(card.kind, action)
    if not sessions and card.kind == "SESSION":
        raise card_errors.kind_not_supported("SESSION", action)
    cards.ensure_usable(card)
    product = await cards.cached_product(card.product_id)
    if product.pin_threshold is not None and value(product) > product.pin_threshold:
        await cards.check_pin(card, pin)
    elif pin is not None and card.pin_hash is not None:
        await cards.check_pin(card, pin)
    return product


async def _resolve_card(
    actor: Actor, card_id: str | None, payment_code: str | None, card_uid: str | None
) -> Card:
    given = [v for v in (card_id, payment_code, card_uid) if v is not None]
    if len(given) != 1:
        raise errors.one_card_source()
    if payment_code is not None:
        return await codes.card_for_code(actor, payment_code)  # spends the code
    if card_uid is not None:
        card = await cards.card_by_uid(card_uid)
        if card is None:
            raise card_errors.card_not_found("cardUid")
        await uid_guard.check_presented(card)  # UIDs are weak: DESFire proof, tap counter
        return card
    assert card_id is not None
    return await cards.card_for(actor, card_id)


async def pay(
    actor: Actor,
    *,
    store_id: str,
    amount: int,
    idempotency_key: str,
    card_id: str | None = None,
    payment_code: str | None = None,
    card_uid: str | None = None,
    pin: str | None = None,
    coupon_ids: list[str] | None = None,
) -> Payment:
    cards.check_amount(amount)
    if coupon_ids:
        # Coupons arrive with the promotions issue; refusing beats charging the full amount.
        raise DomainError(
            "COUPON_NOT_APPLICABLE", "优惠券暂不可用", "Coupons cannot be used yet", "couponIds"
        )
    try:
        card, store_merchant = await presented_card(
            actor, store_id, card_id, payment_code, card_uid
        )
    except codes.CodeAlreadyUsed as used:
        # The retry of the payment that spent the code replays it (the code's card never
        # changes, so neither does the request).
        request = {"storeId": store_id, "amount": amount, "cardId": used.card_id}
        existing = await replay_payment(actor, idempotency_key, "pay", request)
        if existing is not None:
            return existing
        raise
    request = {"storeId": store_id, "amount": amount, "cardId": card.id}
    try:
        product = await check_card_at_store(
            card, store_merchant, action="pay (use sessionRedeem)", pin=pin, value=lambda _: amount
        )
        taken = await take_allowances(
            card,
            amount,
            pin,
            payment_code=payment_code,
            card_uid=card_uid,
            replay=card_uid is not None
            and bool(await _replayed_id(actor, idempotency_key, "pay", request)),
        )
    except DomainError:
        # A retry of a payment that went through replays it, even if the card has since
        # been frozen or the PIN locked.
        existing = await replay_payment(actor, idempotency_key, "pay", request)
        if existing is not None:
            return existing
        raise
    try:
        if is_postgres():
            return await _pay_in_one_round_trip(
                actor, card, store_id, amount, idempotency_key, request, product.bonus_first
            )
        return await _pay(
            actor, card, store_id, amount, idempotency_key, request, product.bonus_first
        )
    except DomainError:
        await taken.give_back()
        raise


@dataclass
class Allowances:
    """What a charge took from the daily limits of how its card was presented."""

    code: Any = None
    uid: Any = None

    async def give_back(self) -> None:
        """The charge did not go through: its amount is free again."""
        if self.code is not None:
            await codes.release_daily_amount(self.code)
        await uid_guard.release(self.uid)


async def take_allowances(
    card: Card,
    amount: int,
    pin: str | None,
    *,
    payment_code: str | None,
    card_uid: str | None,
    replay: bool,
) -> Allowances:
    """The rulebook's daily limit for payment codes, and the velocity and no-PIN limits of
    weak UID cards, for a charge presented that way (not again for the retry of one)."""
    taken = Allowances()
    if payment_code is not None:
        taken.code = await codes.reserve_daily_amount(card, amount)
    if card_uid is not None and not replay:
        try:
            taken.uid = await uid_guard.admit(card, amount, pin)
        except DomainError:
            await taken.give_back()
            raise
    return taken


async def presented_card(
    actor: Actor,
    store_id: str,
    card_id: str | None,
    payment_code: str | None,
    card_uid: str | None,
) -> tuple[Card, str]:
    """The card presented at a store, and the store's merchant, if the actor may charge there.

    Consumers pay with their own card by id; staff and terminals charge at their own stores.
    """
    store_merchant = await _store_merchant(store_id)
    if actor.role == Role.CONSUMER:
        if card_id is None:
            raise errors.one_card_source()
    elif actor.role in STAFF_ROLES or actor.role == Role.TERMINAL:
        if not actor.can_act_at_store(store_merchant, store_id):
            raise forbidden("Not your store")
    else:
        raise forbidden()
    return await _resolve_card(actor, card_id, payment_code, card_uid), store_merchant


async def _store_merchant(store_id: str) -> str:
    """A store's merchant never changes, so it is remembered per process."""
    merchant_id = _STORE_MERCHANT.get(store_id)
    if merchant_id is None:
        merchant_id = (await get_store(store_id)).merchant_id
        _STORE_MERCHANT[store_id] = merchant_id
    return merchant_id


_STORE_MERCHANT: dict[str, str] = {}


async def _pay_in_one_round_trip(
    actor: Actor,
    card: Card,
    store_id: str,
    amount: int,
    key: str,
    request: dict[str, object],
    bonus_first: bool,
) -> Payment:
    """PostgreSQL: the whole payment is the `yk_pay` function (migration 0003)."""
    if not 8 <= len(key) <= 100:
        raise ledger_errors.invalid_idempotency_key()
    payment_id, transfer_id, now = new_id("pay"), new_id("txn"), clock.now()
    rows = await fetch(
        connection(),
        "SELECT * FROM yk_pay($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        actor.id,
        key,
        ledger.request_hash("pay", request),
        payment_id,
        transfer_id,
        new_id("cta"),
        card.id,
        card.merchant_id,
        store_id,
        amount,
        bonus_first,
        random.randrange(ledger.HOT_SHARDS),  # noqa: S311 (load spreading, not secrecy)
        actor.id,
        now,
    )
    outcome = rows[0]["outcome"]
    if outcome == "REPLAY":
        return await Payment.get(id=rows[0]["result_id"])
    if outcome == "KEY_REUSED":
        raise ledger_errors.idempotency_key_reused()
    if outcome == "INSUFFICIENT_FUNDS":
        raise ledger_errors.insufficient_funds()
    events = config.get().events
    if events is not None:
        events.kick()
    return Payment(
        id=payment_id,
        card_id=card.id,
        merchant_id=card.merchant_id,
        store_id=store_id,
        amount=amount,
        principal_amount=rows[0]["from_principal"],
        bonus_amount=rows[0]["from_bonus"],
        refunded_amount=0,
        refunded_principal=0,
        refunded_bonus=0,
        status="SUCCEEDED",
        transfer_id=transfer_id,
        actor_id=actor.id,
        created_at=now,
    )


async def _pay(
    actor: Actor,
    card: Card,
    store_id: str,
    amount: int,
    key: str,
    request: dict[str, object],
    bonus_first: bool,
) -> Payment:
    """The same payment as statements in one transaction (SQLite, and the reference)."""
    payment_id = new_id("pay")
    principal_acc = ledger.account_id(card.id, ledger.CARD_PRINCIPAL)
    bonus_acc = ledger.account_id(card.id, ledger.CARD_BONUS)
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=key,
            operation="pay",
            request=request,
            result_id=payment_id,
        )
        if replay is not None:
            return await Payment.filter(id=replay).using_db(conn).get()
        # The split is decided on balances read in this transaction; the debits below are
        # conditional, so a concurrent spend makes this one fail rather than overdraw.
        bal = await ledger.balances(conn, [principal_acc, bonus_acc])
        debits, from_principal, from_bonus = spend_postings(bal, card.id, amount, bonus_first)
        postings = [
            (ledger.hot_account(card.merchant_id, ledger.MERCHANT_RECEIVABLE), amount),
            *debits,
        ]
        posted = await ledger.post(
            conn, kind="PAYMENT", asset=ledger.FEN, postings=postings, reference=payment_id
        )
        payment = await Payment.create(
            using_db=conn,
            id=payment_id,
            card_id=card.id,
            merchant_id=card.merchant_id,
            store_id=store_id,
            amount=amount,
            principal_amount=from_principal,
            bonus_amount=from_bonus,
            status="SUCCEEDED",
            transfer_id=posted.transfer_id,
            actor_id=actor.id,
            created_at=clock.now(),
        )
        after = await ledger.balances(conn, [principal_acc, bonus_acc])
        await cards.record_activity(
            conn,
            card_id=card.id,
            transfer_id=posted.transfer_id,
            kind="PAYMENT",
            delta=-amount,
            balance_after=sum(after.values()),
            store_id=store_id,
            reference=payment_id,
            reason="PAYMENT",
        )
    return payment


async def replay_payment(
    actor: Actor, key: str, operation: str, request: dict[str, object]
) -> Payment | None:
    result_id = await _replayed_id(actor, key, operation, request)
    return await Payment.get(id=result_id) if result_id else None


async def _replayed_id(
    actor: Actor, key: str, operation: str, request: dict[str, object]
) -> str | None:
    """The result of an earlier request with this key, looked up outside any transaction."""
    return await ledger.find_idempotent_result(
        connection(), scope=actor.id, key=key, operation=operation, request=request
    )


async def current_card(conn: BaseDBAsyncClient, card_id: str) -> str:
    """Follow 补卡 replacements to the card that holds the balance today."""
    for _ in range(100):
        row = await Card.filter(id=card_id).using_db(conn).first()
        if row is None or row.status != "REPLACED" or not row.replaced_by_id:
            return card_id
        card_id = row.replaced_by_id
    raise RuntimeError(f"replacement chain too long from {card_id}")


async def get_payment_for(actor: Actor, payment_id: str) -> Payment:
    payment = await Payment.get_or_none(id=payment_id) if has_prefix(payment_id, "pay") else None
    if payment is None:
        raise errors.payment_not_found()
    if actor.role == Role.OPERATOR:
        return payment
    if actor.role in STAFF_ROLES or actor.role == Role.TERMINAL:
        if actor.can_act_at_store(payment.merchant_id, payment.store_id):
            return payment
    if actor.role == Role.CONSUMER:
        card = await Card.get_or_none(id=payment.card_id)
        if card is not None and card.holder_id == actor.id:
            return payment
    raise errors.payment_not_found()


def refund_split(payment: Payment, amount: int) -> tuple[int, int]:
    """(principal, bonus) to give back: in the payment's proportion, exact on the last refund."""
    left_principal = payment.principal_amount - payment.refunded_principal
    left_bonus = payment.bonus_amount - payment.refunded_bonus
    if payment.refunded_amount + amount == payment.amount:
        return left_principal, left_bonus
    bonus = min(left_bonus, amount * payment.bonus_amount // payment.amount)
    principal = amount - bonus
    if principal > left_principal:
        principal, bonus = left_principal, amount - left_principal
    return principal, bonus


async def refund(
    actor: Actor,
    *,
    payment_id: str,
    amount: int,
    reason: str | None,
    idempotency_key: str,
    void: bool = False,
) -> Refund:
    """Give (part of) a payment back to the sub-balances it came from; never more than it."""
    cards.check_amount(amount)
    if reason is not None and len(reason) > 200:
        raise invalid_input("reason", "原因最多 200 字", "Reason is at most 200 characters")
    payment = await get_payment_for(actor, payment_id)
    if actor.role not in STAFF_ROLES and actor.role != Role.TERMINAL:
        raise forbidden("Refunds are made by the merchant")
    operation = "paymentVoid" if void else "refund"
    request = {"paymentId": payment_id, "amount": amount, "reason": reason}
    refund_id = new_id("rfd")
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation=operation,
            request=request,
            result_id=refund_id,
        )
        if replay is not None:
            return await Refund.filter(id=replay).using_db(conn).get()
        # Lock the payment row: concurrent refunds of one payment queue here.
        locked = Payment.filter(id=payment.id).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            locked = locked.select_for_update()
        current = await locked.first()
        assert current is not None
        if void:
            if current.refunded_amount:
                raise ledger_errors.already_reversed()
            if current.created_at.astimezone(UTC).date() != clock.now().astimezone(UTC).date():
                raise errors.void_too_late()
        if current.refunded_amount + amount > current.amount:
            raise errors.refund_exceeds_payment()
        if current.sessions and amount != current.amount:
            raise errors.session_refund_whole()
        principal, bonus = refund_split(current, amount)
        # A card replaced since the payment passed its balance on: the refund follows it.
        holder_card = await current_card(conn, current.card_id)
        postings = [(ledger.hot_account(current.merchant_id, ledger.MERCHANT_RECEIVABLE), -amount)]
        if principal:
            postings.append((ledger.account_id(holder_card, ledger.CARD_PRINCIPAL), principal))
        if bonus:
            postings.append((ledger.account_id(holder_card, ledger.CARD_BONUS), bonus))
        posted = await ledger.post(
            conn,
            kind="VOID" if void else "REFUND",
            asset=ledger.FEN,
            postings=postings,
            reference=refund_id,
            reverses_id=current.transfer_id if void else None,
        )
        await escrow.principal_returned(conn, current.merchant_id, principal)
        await counter.record(
            conn,
            actor,
            merchant_id=current.merchant_id,
            store_id=current.store_id,
            kind="VOID" if void else "REFUND",
            channel="CARD",
            amount=amount,
            cash=0,
            reference=refund_id,
            at_counter_only=True,
        )
        sessions_after = None
        if current.sessions:
            sessions_acc = ledger.account_id(holder_card, ledger.CARD_SESSIONS)
            counted = await ledger.post(
                conn,
                kind="VOID" if void else "REFUND",
                asset=ledger.SESSIONS,
                postings=[
                    (
                        ledger.hot_account(current.merchant_id, ledger.MERCHANT_SESSIONS_ISSUED),
                        -current.sessions,
                    ),
                    (sessions_acc, current.sessions),
                ],
                reference=refund_id,
                reverses_id=current.session_transfer_id if void else None,
            )
            sessions_after = counted.balances[sessions_acc]
        refunded = current.refunded_amount + amount
        await (
            Payment.filter(id=current.id)
            .using_db(conn)
            .update(
                refunded_amount=refunded,
                refunded_principal=current.refunded_principal + principal,
                refunded_bonus=current.refunded_bonus + bonus,
                status="VOIDED"
                if void
                else ("REFUNDED" if refunded == current.amount else "PARTIALLY_REFUNDED"),
            )
        )
        result = await Refund.create(
            using_db=conn,
            id=refund_id,
            payment_id=current.id,
            amount=amount,
            principal_amount=principal,
            bonus_amount=bonus,
            kind="VOID" if void else "REFUND",
            reason=reason,
            transfer_id=posted.transfer_id,
            actor_id=actor.id,
            created_at=clock.now(),
        )
        after = await ledger.balances(
            conn,
            [ledger.account_id(holder_card, k) for k in (ledger.CARD_PRINCIPAL, ledger.CARD_BONUS)],
        )
        await cards.record_activity(
            conn,
            card_id=holder_card,
            transfer_id=posted.transfer_id,
            kind="VOID" if void else "REFUND",
            delta=amount,
            balance_after=sum(after.values()),
            store_id=current.store_id,
            reference=refund_id,
            reason="VOID" if void else "REFUND",
            sessions=current.sessions,
            sessions_after=sessions_after,
        )
    return result


async def void(
    actor: Actor, *, payment_id: str, reason: str | None, idempotency_key: str
) -> Refund:
    """撤销: the whole payment back, same day, once."""
    payment = await get_payment_for(actor, payment_id)
    return await refund(
        actor,
        payment_id=payment_id,
        amount=payment.amount,
        reason=reason,
        idempotency_key=idempotency_key,
        void=True,
    )


async def top_up(
    actor: Actor,
    *,
    card_id: str,
    amount: int,
    channel: str,
    idempotency_key: str,
    store_id: str | None = None,
) -> TopUp:
    """充值. CASH at the counter is credited at once; WECHAT_PAY and ALIPAY wait for the
    provider's notification (domain/payments/topups.py)."""
    cards.check_amount(amount)
    if channel not in TOP_UP_CHANNELS:
        raise invalid_input("channel", "充值渠道无效", "Unknown channel")
    card = await cards.card_for(actor, card_id)
    request = {"cardId": card_id, "amount": amount, "channel": channel}
    try:
        if channel in cards.COUNTER_CHANNELS and not cards.is_staff_for(actor, card.merchant_id):
            # Cash and bank cards are taken at the counter.
            raise errors.channel_unavailable()
        cards.ensure_usable(card)
    except DomainError:
        # A retry of a top-up that went through replays it, even if the card has since been
        # frozen, reported lost or replaced: the client must learn the money arrived.
        done = await _replayed_id(actor, idempotency_key, "topUp", request)
        if done is not None:
            return await TopUp.get(id=done)
        raise
    if channel not in cards.COUNTER_CHANNELS:
        from domain.payments import topups  # online top-ups build on this module

        return await topups.start(
            actor, card=card, amount=amount, channel=channel, idempotency_key=idempotency_key
        )
    product = await cards.get_product(card.product_id)
    merchant = await get_merchant(card.merchant_id)
    top_up_id = new_id("top")
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="topUp",
            request=request,
            result_id=top_up_id,
        )
        if replay is not None:
            return await TopUp.filter(id=replay).using_db(conn).get()
        transfer_id, bonus, _ = await cards.load_value(
            conn,
            card=card,
            product=product,
            merchant=merchant,
            amount=amount,
            reference=top_up_id,
            store_id=store_id or (actor.store_ids[0] if actor.store_ids else None),
            kind="TOPUP",
        )
        await counter.record(
            conn,
            actor,
            merchant_id=card.merchant_id,
            store_id=store_id,
            kind="TOP_UP",
            channel=channel,
            amount=amount,
            cash=amount if channel == "CASH" else 0,
            reference=top_up_id,
        )
        now = clock.now()
        return await TopUp.create(
            using_db=conn,
            id=top_up_id,
            card_id=card.id,
            merchant_id=card.merchant_id,
            amount=amount,
            bonus=bonus,
            channel=channel,
            status="SUCCEEDED",
            transfer_id=transfer_id,
            actor_id=actor.id,
            created_at=now,
            completed_at=now,
        )
