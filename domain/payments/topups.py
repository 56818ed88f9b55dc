"""Online top-ups (在线充值): a pending top-up, credited once when the provider says it was paid.

The card is credited only from a verified provider notification, in one transaction that moves
the top-up from PENDING (or EXPIRED: the consumer paid after we stopped waiting, and the money
is real) to SUCCEEDED and posts the credit. Providers repeat notifications and may send them
out of order: a second copy finds the top-up already SUCCEEDED and changes nothing. Money that
arrives but cannot be credited (the card was cancelled meanwhile, or the credit would break the
rulebook's balance cap) is recorded as REFUND_DUE for the merchant to send back.

Starting one (`start`) commits the PENDING top-up with its idempotency key first, so its id, the
out_trade_no, is fixed before any provider hears of it; then, for WeChat Pay, the APP order is
placed and its prepay_id stored. A retry with the same key finds the top-up and, if it has no
prepay_id yet (the first attempt died between the two steps), places the same order again with
the same out_trade_no and parameters, which WeChat allows while it is unpaid. If the provider
cannot be reached or refuses, the top-up becomes FAILED and its idempotency key is freed, so the
caller gets PROVIDER_UNAVAILABLE and may retry with the same key; that starts a new top-up
(nobody can pay the failed one: its prepay_id never reached an app). Alipay needs no call: its
order string is signed whenever it is asked for (`pay_request`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock, config
from domain.actor import Actor, Role
from domain.cards import service as cards
from domain.cards.models import Card
from domain.channels import alipay_orders, wechatpay_orders
from domain.channels.errors import ChannelError, ErrorCode
from domain.db import connection, db_now, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.escrow.models import EscrowAccount
from domain.ids import new_id
from domain.ledger import service as ledger
from domain.ledger.models import IdempotencyKey
from domain.merchants.service import get_merchant
from domain.payments import errors
from domain.payments.models import TopUp
from domain.payments.service import current_card
from domain.rules import service as rules
from domain.sql import fetch

log = structlog.get_logger(__name__)

ONLINE_CHANNELS = ("WECHAT_PAY", "ALIPAY")
DEAD_CARD = ("CANCELLED", "EXPIRED")


def channel_configured(channel: str) -> bool:
    """Offered only when fully configured: notifications verify AND orders can be placed."""
    cfg = config.get()
    if channel == "WECHAT_PAY":
        return cfg.wechatpay is not None and cfg.wechatpay.ordering is not None
    if channel == "ALIPAY":
        return cfg.alipay is not None and cfg.alipay.ordering is not None
    return channel == "BANK_TRANSFER"  # offered where the merchant has an escrow account


def provider_unavailable() -> DomainError:
    return DomainError(
        "PROVIDER_UNAVAILABLE",
        "支付渠道暂时无法下单，请稍后重试或换用其他方式",
        "The payment provider cannot take the order now; try again later or another channel",
        "channel",
    )


@dataclass(frozen=True, slots=True)
class PayRequest:
    """What the payer needs to pay a PENDING top-up: one of these is set."""

    channel: str
    wechat_app: wechatpay_orders.AppPayParams | None = None
    alipay_order_string: str | None = None
    bank_transfer: BankTransferInstructions | None = None


@dataclass(frozen=True)
class BankTransferInstructions:
    """Where a bank transfer goes: the merchant's escrow account at its custodian bank, with
    the top-up id as the transfer's reference (附言) so the custodian can match it."""

    custodian: str
    account_last4: str
    reference: str
    amount: int


_NOT_IN_SUBJECT = re.compile(r"[/=&\s]+")


def order_subject(merchant_name: str) -> str:
    """The line the consumer sees in their WeChat or Alipay bill: "<merchant>-储值卡充值".

    Alipay refuses / = & in a subject; WeChat allows at most 127 characters. The same merchant
    name always gives the same subject, so a repeated WeChat order matches the first.
    """
    name = _NOT_IN_SUBJECT.sub(" ", merchant_name).strip()[:100]
    return f"{name}-储值卡充值" if name else "储值卡充值"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _pending_amount(conn: BaseDBAsyncClient, card_id: str) -> int:
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(amount), 0) AS pending FROM top_ups"
        " WHERE card_id = $1 AND status = 'PENDING'",
        card_id,
    )
    return int(rows[0]["pending"])


async def start(
    actor: Actor, *, card: Card, amount: int, channel: str, idempotency_key: str
) -> TopUp:
    """Create a PENDING top-up the consumer pays through the provider (its id is out_trade_no).

    The rulebook is checked now, counting top-ups still waiting, so a consumer is not taken
    money the card could not accept.
    """
    if not channel_configured(channel):
        raise errors.channel_unavailable()
    product = await cards.cached_product(card.product_id)
    merchant = await get_merchant(card.merchant_id)
    if channel == "BANK_TRANSFER" and not await EscrowAccount.exists(merchant_id=merchant.id):
        raise errors.channel_unavailable()
    book = rules.for_region(merchant.region_code)
    if amount >= book.real_name_single_purchase and not (card.kind == "NAMED" and card.holder_id):
        raise rules.real_name_required(book.real_name_single_purchase)
    sessions = cards.sessions_for(product, amount) if card.kind == "SESSION" else None
    rules.check_purchase(book, merchant.industry, amount, sessions, channel=channel)
    request = {"cardId": card.id, "amount": amount, "channel": channel}
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
            top_up = await TopUp.filter(id=replay).using_db(conn).get()
        else:
            principal = (await cards.balances_of(conn, [card.id]))[card.id].principal
            cap = book.balance_cap(card.kind)
            if principal + await _pending_amount(conn, card.id) + amount > cap:
                raise rules.balance_cap_exceeded(cap)
            now = await db_now(conn)
            top_up = await TopUp.create(
                using_db=conn,
                id=top_up_id,
                card_id=card.id,
                merchant_id=card.merchant_id,
                amount=amount,
                bonus=0,
                channel=channel,
                status="PENDING",
                actor_id=actor.id,
                created_at=now,
                expires_at=now
                + timedelta(
                    seconds=BANK_TRANSFER_TTL
                    if channel == "BANK_TRANSFER"
                    else config.get().top_up_ttl
                ),
            )
    # Committed: the out_trade_no is now fixed, whatever happens at the provider.
    return await _place_order(actor, idempotency_key, top_up)


async def _place_order(actor: Actor, idempotency_key: str, top_up: TopUp) -> TopUp:
    """Give a PENDING WeChat Pay top-up its prepay_id (once; retries place the same order)."""
    cfg = config.get().wechatpay
    if (
        top_up.channel != "WECHAT_PAY"
        or top_up.status != "PENDING"
        or top_up.prepay_id
        or top_up.expires_at is None
        or _aware(top_up.expires_at) <= clock.now()
    ):
        return top_up
    if cfg is None or cfg.ordering is None:
        raise errors.channel_unavailable()
    merchant = await get_merchant(top_up.merchant_id)
    order = wechatpay_orders.AppOrder(
        out_trade_no=top_up.id,
        description=order_subject(merchant.name),
        total_fen=top_up.amount,
        time_expire=top_up.expires_at,
    )
    try:
        prepay_id = await wechatpay_orders.place_app_order(
            cfg, cfg.ordering, order, now=clock.now()
        )
    except wechatpay_orders.OrderError as exc:
        log.warning(
            "wechatpay order not placed",
            top_up=top_up.id,
            reason=exc.reason,
            detail=exc.message,
            request_id=exc.request_id,
        )
        return await _order_failed(actor, idempotency_key, top_up, f"{exc.reason}: {exc.message}")
    placed = await TopUp.filter(id=top_up.id, status="PENDING").update(prepay_id=prepay_id)
    if not placed:
        # Closed meanwhile by a concurrent attempt that failed: this order is not ours to give.
        current = await TopUp.get(id=top_up.id)
        if current.status == "PENDING" and current.prepay_id:
            return current
        raise provider_unavailable()
    top_up.prepay_id = prepay_id
    return top_up


async def _order_failed(actor: Actor, idempotency_key: str, top_up: TopUp, why: str) -> TopUp:
    """The order could not be placed: FAILED, and the key freed for a clean retry.

    Unless a concurrent attempt with the same key placed it meanwhile: then that one stands.
    """
    async with transaction() as conn:
        failed = (
            await TopUp.filter(id=top_up.id, status="PENDING", prepay_id=None)
            .using_db(conn)
            .update(status="FAILED", failure_reason=f"PROVIDER_UNAVAILABLE: {why}"[:200])
        )
        if failed:
            # (the key is the ledger's, claimed in start(); a failed attempt leaves it free)
            await (
                IdempotencyKey.filter(scope=actor.id, key=idempotency_key, result_id=top_up.id)
                .using_db(conn)
                .delete()
            )
    if not failed:
        current = await TopUp.get(id=top_up.id)
        if current.status == "PENDING" and current.prepay_id:
            return current
    raise provider_unavailable()


async def pay_request(top_up: TopUp) -> PayRequest | None:
    """The signed parameters the app pays this top-up with, while it can still be paid.

    None for counter channels, once the top-up is no longer PENDING or past its time, and for a
    WeChat Pay top-up whose order was never placed. Signed afresh on each call (a new timestamp
    and nonce); the order behind them, the out_trade_no and amount, stays the same.
    """
    if top_up.channel not in (*ONLINE_CHANNELS, "BANK_TRANSFER") or top_up.status != "PENDING":
        return None
    now = clock.now()
    if top_up.expires_at is None or _aware(top_up.expires_at) <= now:
        return None
    if top_up.channel == "BANK_TRANSFER":
        account = await EscrowAccount.get_or_none(merchant_id=top_up.merchant_id)
        if account is None:
            return None
        return PayRequest(
            channel=top_up.channel,
            bank_transfer=BankTransferInstructions(
                custodian=account.custodian,
                account_last4=account.bank_account_last4,
                reference=top_up.id,
                amount=top_up.amount,
            ),
        )
    cfg = config.get()
    if top_up.channel == "WECHAT_PAY":
        wx = cfg.wechatpay
        if wx is None or wx.ordering is None or not top_up.prepay_id:
            return None
        params = wechatpay_orders.app_pay_params(wx, wx.ordering, top_up.prepay_id, now=now)
        return PayRequest(channel=top_up.channel, wechat_app=params)
    ali = cfg.alipay
    if ali is None or ali.ordering is None:
        return None
    merchant = await get_merchant(top_up.merchant_id)
    order_string = alipay_orders.app_order_string(
        ali,
        ali.ordering,
        out_trade_no=top_up.id,
        subject=order_subject(merchant.name),
        total_fen=top_up.amount,
        time_expire=top_up.expires_at,
        now=now,
    )
    return PayRequest(channel=top_up.channel, alipay_order_string=order_string)


async def _locked(conn: BaseDBAsyncClient, top_up_id: str) -> TopUp | None:
    query = TopUp.filter(id=top_up_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    return await query.first()


async def provider_paid(
    *, channel: str, out_trade_no: str, provider_trade_no: str, amount: int
) -> str:
    """A verified notification says `out_trade_no` was paid: credit it once.

    Returns what happened (CREDITED, DUPLICATE, REFUND_DUE). Raises ChannelError when the
    notification does not match a top-up of ours, so the provider hears FAIL and a human looks.
    """
    try:
        async with transaction() as conn:
            top_up = await _locked(conn, out_trade_no)
            _check_matches(top_up, channel, amount, out_trade_no)
            assert top_up is not None
            if top_up.status in ("SUCCEEDED", "REFUND_DUE"):
                if top_up.provider_trade_no not in (None, provider_trade_no):
                    log.error(
                        "second provider payment for one top-up",
                        top_up=top_up.id,
                        first=top_up.provider_trade_no,
                        second=provider_trade_no,
                    )
                return "DUPLICATE"
            card_id = await current_card(conn, top_up.card_id)
            card = await Card.filter(id=card_id).using_db(conn).get()
            if card.status in DEAD_CARD:
                raise DomainError(
                    "CARD_NOT_ACTIVE", "卡已注销", "The card can no longer be credited"
                )
            product = await cards.cached_product(card.product_id)
            merchant = await get_merchant(card.merchant_id)
            transfer_id, bonus, _ = await cards.load_value(
                conn,
                card=card,
                product=product,
                merchant=merchant,
                amount=top_up.amount,
                reference=top_up.id,
                store_id=None,
                kind="TOPUP",
            )
            await (
                TopUp.filter(id=top_up.id)
                .using_db(conn)
                .update(
                    status="SUCCEEDED",
                    transfer_id=transfer_id,
                    bonus=bonus,
                    provider_trade_no=provider_trade_no,
                    completed_at=clock.now(),
                )
            )
            return "CREDITED"
    except DomainError as exc:
        # Paid but not creditable: the credit rolled back; record that the money goes back.
        async with transaction() as conn:
            changed = (
                await TopUp.filter(id=out_trade_no, status__in=("PENDING", "EXPIRED", "FAILED"))
                .using_db(conn)
                .update(
                    status="REFUND_DUE",
                    provider_trade_no=provider_trade_no,
                    failure_reason=f"{exc.code}: {exc.en}"[:200],
                    completed_at=clock.now(),
                )
            )
        log.warning("paid top-up cannot be credited", top_up=out_trade_no, code=exc.code)
        return "REFUND_DUE" if changed else "DUPLICATE"


async def provider_closed(*, channel: str, out_trade_no: str, amount: int) -> str:
    """The provider says the order was closed unpaid: a PENDING top-up FAILED."""
    async with transaction() as conn:
        top_up = await _locked(conn, out_trade_no)
        _check_matches(top_up, channel, amount, out_trade_no)
        changed = (
            await TopUp.filter(id=out_trade_no, status__in=("PENDING", "EXPIRED"))
            .using_db(conn)
            .update(status="FAILED", failure_reason="closed unpaid at the provider")
        )
    return "FAILED" if changed else "IGNORED"


def _check_matches(top_up: TopUp | None, channel: str, amount: int, out_trade_no: str) -> None:
    if top_up is None or top_up.channel != channel:
        raise ChannelError(ErrorCode.MALFORMED, f"no {channel} top-up {out_trade_no[:40]!r}")
    if top_up.amount != amount:
        log.error(
            "provider amount differs from the top-up",
            top_up=top_up.id,
            expected=top_up.amount,
            notified=amount,
        )
        raise ChannelError(ErrorCode.AMOUNT_INVALID, "amount does not match the order")


BANK_TRANSFER_TTL = 3 * 24 * 3600  # a bank transfer may take a few working days to arrive


async def confirm_bank_transfer(
    actor: Actor, *, top_up_id: str, amount: int, bank_reference: str
) -> TopUp:
    """The custodian bank saw the transfer arrive in the merchant's escrow account: credit the
    top-up, once (a second confirmation of the same transfer changes nothing)."""
    from domain.escrow import service as escrow

    if actor.role != Role.CUSTODIAN:
        raise forbidden("Bank transfers are confirmed by the custodian bank")
    bank_reference = bank_reference.strip()
    if not 0 < len(bank_reference) <= 64:
        raise invalid_input(
            "bankReference", "请填写银行流水号", "Give the bank's transfer reference"
        )
    found = await TopUp.get_or_none(id=top_up_id) if top_up_id.startswith("top") else None
    if found is None or found.channel != "BANK_TRANSFER":
        raise DomainError("NOT_FOUND", "充值不存在", "Top-up not found", "topUpId")
    await escrow.account_for(actor, found.merchant_id)  # NOT_FOUND unless it is our merchant
    try:
        await provider_paid(
            channel="BANK_TRANSFER",
            out_trade_no=found.id,
            provider_trade_no=bank_reference,
            amount=amount,
        )
    except ChannelError as exc:
        raise DomainError(
            "AMOUNT_MISMATCH",
            "到账金额与充值金额不符",
            "The amount received differs from the top-up",
            "amount",
        ) from exc
    return await TopUp.get(id=found.id)


async def expire_due(limit: int = 1000) -> int:
    """PENDING top-ups past their time become EXPIRED (a late payment still credits)."""
    conn = connection()
    now = await db_now(conn)
    due = await (
        TopUp.filter(status="PENDING", expires_at__lte=now)
        .order_by("expires_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    if not due:
        return 0
    return int(
        await TopUp.filter(id__in=list(due), status="PENDING")
        .using_db(conn)
        .update(status="EXPIRED")
    )


async def get_top_up_for(actor: Actor, top_up_id: str) -> TopUp | None:
    """A top-up its card's holder, the merchant's staff or an operator may see."""
    found = await TopUp.get_or_none(id=top_up_id) if top_up_id.startswith("top") else None
    if found is None:
        return None
    card = await Card.get_or_none(id=found.card_id)
    if card is None or not cards.can_manage_card(actor, card):
        return None
    return found
