"""退卡: cancelling a card and paying its remaining principal back, exactly once.

The holder (or the merchant's staff at the counter, for a bearer card) asks; within the
jurisdiction's cooling-off window (冷静期) the refund is unconditional and full, and must be
paid within the rulebook's days; otherwise the merchant decides by the product's terms. The
merchant's admin approves (or, if the merchant has stopped trading, its custodian bank). On
approval, in one transaction: the card becomes CANCELLED, its principal leaves the merchant's
prepaid funds (escrow first as far as the policy holds it, the rest from operating funds),
its bonus value and sessions are forfeited back to the merchant, and the payout is recorded.
"""

from __future__ import annotations

from datetime import timedelta

from tortoise.exceptions import IntegrityError

from domain import clock
from domain.actor import Actor, Role
from domain.audit import service as audit
from domain.cards import errors
from domain.cards import service as cards
from domain.cards.models import Card, CardCancellation
from domain.counter import service as counter
from domain.db import connection, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.escrow import service as escrow
from domain.identity.secrets import encrypt_personal
from domain.ids import has_prefix, new_id
from domain.ledger import service as ledger
from domain.merchants.service import get_merchant
from domain.payments.models import Hold
from domain.rules import service as rules

PAYOUT_METHODS = ("CASH", "BANK_ACCOUNT")


def _not_found() -> DomainError:
    return DomainError("NOT_FOUND", "退卡申请不存在", "Cancellation not found", "cancellationId")


def cash_refund_too_large(limit: int) -> DomainError:
    return DomainError(
        "CASH_REFUND_LIMIT_EXCEEDED",
        f"退卡现金退款不得超过 {limit // 100} 元，请退至银行账户",
        f"A cash refund is at most {limit // 100} yuan: pay it to a bank account",
        "payoutMethod",
    )


async def request(
    actor: Actor,
    *,
    card_id: str,
    reason: str,
    payout_method: str,
    bank_account_no: str | None,
    account_name: str | None,
) -> CardCancellation:
    card = await cards.card_for(actor, card_id)
    if not (actor.role == Role.CONSUMER or cards.is_staff_for(actor, card.merchant_id)):
        raise forbidden()
    reason = reason.strip()
    if not reason or len(reason) > 200:
        raise invalid_input("reason", "请填写 1-200 字的原因", "Give a reason of 1-200 characters")
    if payout_method not in PAYOUT_METHODS:
        raise invalid_input("payoutMethod", "退款方式无效", "Pay out in CASH or to a BANK_ACCOUNT")
    digits = (bank_account_no or "").replace(" ", "")
    if payout_method == "BANK_ACCOUNT":
        if not (digits.isdigit() and 8 <= len(digits) <= 32):
            raise invalid_input("bankAccountNo", "银行账号格式不正确", "Not a bank account number")
        if not account_name or not 0 < len(account_name.strip()) <= 50:
            raise invalid_input("accountName", "请填写户名", "Give the account holder's name")
    if card.status not in ("ACTIVE", "FROZEN", "LOST", "INACTIVE"):
        raise errors.illegal_transition(card.status, "cancelled")
    merchant = await get_merchant(card.merchant_id)
    book = rules.for_region(merchant.region_code)
    principal = (await cards.balances_of(connection(), [card.id]))[card.id].principal
    if payout_method == "CASH" and principal > book.cash_refund_limit:
        raise cash_refund_too_large(book.cash_refund_limit)
    now = clock.now()
    cooling_off = book.cooling_off_days > 0 and now - card.created_at <= timedelta(
        days=book.cooling_off_days
    )
    async with transaction() as conn:
        try:
            found = await CardCancellation.create(
                using_db=conn,
                id=new_id("ccl"),
                card_id=card.id,
                merchant_id=card.merchant_id,
                open_key=card.id,
                status="REQUESTED",
                reason=reason,
                cooling_off=cooling_off,
                pay_by=now + timedelta(days=book.cooling_off_refund_days) if cooling_off else None,
                payout_method=payout_method,
                bank_account_last4=digits[-4:] if digits else None,
                bank_account_encrypted=encrypt_personal(digits) if digits else None,
                account_name=account_name.strip() if account_name else None,
                requested_by=actor.id,
                created_at=now,
            )
        except IntegrityError as exc:
            raise DomainError(
                "ALREADY_REQUESTED", "该卡已有待处理的退卡申请", "The card already has a request"
            ) from exc
        await audit.record(
            conn, actor, "cardCancelRequest", card.id, {"coolingOff": cooling_off, "id": found.id}
        )
    return found


async def get_for(actor: Actor, cancellation_id: str) -> CardCancellation:
    found = (
        await CardCancellation.get_or_none(id=cancellation_id)
        if has_prefix(cancellation_id, "ccl")
        else None
    )
    if found is None:
        raise _not_found()
    card = await Card.get(id=found.card_id)
    if actor.role == Role.OPERATOR or cards.can_manage_card(actor, card):
        return found
    if actor.role == Role.CUSTODIAN and await _custodian_may_decide(actor, found):
        return found
    raise _not_found()


async def _custodian_may_decide(actor: Actor, found: CardCancellation) -> bool:
    """A custodian decides only for a merchant that has stopped trading, and only its own."""
    merchant = await get_merchant(found.merchant_id)
    if merchant.status == "ACTIVE":
        return False
    try:
        await escrow.account_for(actor, merchant.id)
    except DomainError:
        return False
    return True


async def _decider(actor: Actor, cancellation_id: str) -> CardCancellation:
    found = await get_for(actor, cancellation_id)
    if actor.is_admin_of(found.merchant_id):
        return found
    if actor.role == Role.CUSTODIAN and await _custodian_may_decide(actor, found):
        return found
    raise forbidden("Cancellations are decided by the merchant's admin")


async def approve(actor: Actor, *, cancellation_id: str) -> CardCancellation:
    found = await _decider(actor, cancellation_id)
    card = await Card.get(id=found.card_id)
    merchant = await get_merchant(found.merchant_id)
    book = rules.for_region(merchant.region_code)
    now = clock.now()
    async with transaction() as conn:
        decided = (
            await CardCancellation.filter(id=found.id, status="REQUESTED")
            .using_db(conn)
            .update(status="COMPLETED", open_key=None, decided_by=actor.id, decided_at=now)
        )
        if not decided:
            current = await CardCancellation.filter(id=found.id).using_db(conn).get()
            if current.status == "COMPLETED":
                return current  # approving twice pays once
            raise DomainError(
                "ALREADY_DECIDED", "该申请已处理", "The request was already decided", "id"
            )
        if await Hold.filter(card_id=card.id, status="PENDING").using_db(conn).exists():
            raise DomainError(
                "HOLDS_PENDING",
                "卡上有未完成的预授权，请先完成或撤销",
                "The card has pending holds: capture or release them first",
                "cancellationId",
            )
        await cards.transition(conn, card, "CANCELLED", "cancelled")
        # Locked before reading, so the refund is what the card holds when it is cancelled.
        held = await cards.lock_card_balances(conn, card.id)
        principal, bonus, sessions = held.principal, held.bonus, held.sessions
        if found.payout_method == "CASH" and principal > book.cash_refund_limit:
            raise cash_refund_too_large(book.cash_refund_limit)
        transfer_id = None
        if principal or bonus:
            postings: list[tuple[str, int]] = []
            if principal:
                postings += [
                    (ledger.account_id(card.id, ledger.CARD_PRINCIPAL), -principal),
                    *await escrow.money_out_postings(
                        conn, merchant, principal, from_escrow_only=actor.role == Role.CUSTODIAN
                    ),
                ]
            if bonus:
                postings += [
                    (ledger.account_id(card.id, ledger.CARD_BONUS), -bonus),
                    (ledger.hot_account(merchant.id, ledger.MERCHANT_BONUS_FUNDING), bonus),
                ]
            posted = await ledger.post(
                conn, kind="CANCEL", asset=ledger.FEN, postings=postings, reference=found.id
            )
            transfer_id = posted.transfer_id
        if sessions:
            await ledger.post(
                conn,
                kind="CANCEL",
                asset=ledger.SESSIONS,
                postings=[
                    (ledger.account_id(card.id, ledger.CARD_SESSIONS), -sessions),
                    (ledger.hot_account(merchant.id, ledger.MERCHANT_SESSIONS_ISSUED), sessions),
                ],
                reference=found.id,
            )
        await (
            CardCancellation.filter(id=found.id)
            .using_db(conn)
            .update(
                principal_refunded=principal,
                bonus_forfeited=bonus,
                sessions_forfeited=sessions,
                transfer_id=transfer_id,
            )
        )
        if transfer_id is not None:
            await cards.record_activity(
                conn,
                card_id=card.id,
                transfer_id=transfer_id,
                kind="CANCEL",
                delta=-(principal + bonus),
                balance_after=0,
                store_id=None,
                reference=found.id,
                reason="CANCEL",
                sessions=-sessions,
                sessions_after=0 if card.kind == "SESSION" else None,
            )
        await counter.record(
            conn,
            actor,
            merchant_id=merchant.id,
            store_id=None,
            kind="CANCEL_REFUND",
            channel="CASH" if found.payout_method == "CASH" else "NONE",
            amount=principal,
            cash=-principal if found.payout_method == "CASH" else 0,
            reference=found.id,
            at_counter_only=True,
        )
        await audit.record(
            conn,
            actor,
            "cardCancelApprove",
            card.id,
            {"id": found.id, "principal": principal, "bonusForfeited": bonus},
        )
    return await CardCancellation.get(id=found.id)


async def reject(actor: Actor, *, cancellation_id: str, note: str) -> CardCancellation:
    found = await _decider(actor, cancellation_id)
    note = note.strip()
    if not note or len(note) > 200:
        raise invalid_input("note", "请说明理由", "Say why (1-200 characters)")
    if found.cooling_off:
        raise DomainError(
            "COOLING_OFF_REFUND_MANDATORY",
            "冷静期内的退卡申请必须全额退款，不能拒绝",
            "A request within the cooling-off period must be refunded in full",
            "cancellationId",
        )
    async with transaction() as conn:
        decided = (
            await CardCancellation.filter(id=found.id, status="REQUESTED")
            .using_db(conn)
            .update(
                status="REJECTED",
                open_key=None,
                decided_by=actor.id,
                decided_at=clock.now(),
                decision_note=note,
            )
        )
        if not decided:
            raise DomainError(
                "ALREADY_DECIDED", "该申请已处理", "The request was already decided", "id"
            )
        await audit.record(conn, actor, "cardCancelReject", found.card_id, {"id": found.id})
    return await CardCancellation.get(id=found.id)
