"""Online top-ups (在线充值): a pending top-up, credited once when the provider says it was paid.

The card is credited only from a verified provider notification, in one transaction that moves
the top-up from PENDING (or EXPIRED: the consumer paid after we stopped waiting, and the money
is real) to SUCCEEDED and posts the credit. Providers repeat notifications and may send them
out of order: a second copy finds the top-up already SUCCEEDED and changes nothing. Money that
arrives but cannot be credited (the card was cancelled meanwhile, or the credit would break the
rulebook's balance cap) is recorded as REFUND_DUE for the merchant to send back.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock, config
from domain.actor import Actor
from domain.cards import service as cards
from domain.cards.models import Card
from domain.channels.errors import ChannelError, ErrorCode
from domain.db import connection, db_now, transaction
from domain.errors import DomainError
from domain.ids import new_id
from domain.ledger import service as ledger
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
    cfg = config.get()
    return (channel == "WECHAT_PAY" and cfg.wechatpay is not None) or (
        channel == "ALIPAY" and cfg.alipay is not None
    )


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
    book = rules.for_region(merchant.region_code)
    if amount >= book.real_name_single_purchase and not (card.kind == "NAMED" and card.holder_id):
        raise rules.real_name_required(book.real_name_single_purchase)
    sessions = cards.sessions_for(product, amount) if card.kind == "SESSION" else None
    rules.check_purchase(book, merchant.industry, amount, sessions)
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
            return await TopUp.filter(id=replay).using_db(conn).get()
        principal = (await cards.balances_of(conn, [card.id]))[card.id].principal
        cap = book.balance_cap(card.kind)
        if principal + await _pending_amount(conn, card.id) + amount > cap:
            raise rules.balance_cap_exceeded(cap)
        now = await db_now(conn)
        return await TopUp.create(
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
            expires_at=now + timedelta(seconds=config.get().top_up_ttl),
        )


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
