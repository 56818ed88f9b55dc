"""退卡 through the API: cooling-off refunds, the merchant's decision, the payout exactly once."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any

from domain import clock
from tests.api.test_escrow import escrow_of, official, open_escrow
from tests.api.test_holds import hold
from tests.api.test_money import ledger_ok
from tests.api.test_session_cards import session_card
from tests.helpers import (
    CARD,
    TOP_UP,
    MerchantSetup,
    consumer_token,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
)

REQUEST = """mutation($i: CardCancelRequestInput!) { cardCancelRequest(input: $i) {
  cancellation { id status coolingOff payBy payoutMethod bankAccount principalRefunded }
  errors { code field message } } }"""
APPROVE = """mutation($i: CardCancellationIdInput!) { cardCancelApprove(input: $i) {
  cancellation { id status principalRefunded bonusForfeited sessionsForfeited }
  errors { code field message } } }"""
REJECT = """mutation($i: CardCancelRejectInput!) { cardCancelReject(input: $i) {
  cancellation { id status decisionNote } errors { code field message } } }"""


async def holder_card(
    client: Any, sms: Any, m: MerchantSetup, **card: Any
) -> tuple[str, str, dict]:
    phone = "135" + f"{secrets.randbelow(10**8):08d}"
    token = await consumer_token(client, sms, phone)
    found = await make_card(client, m, holder_phone=phone, **card)
    return phone, token, found


async def ask(client: Any, token: str, card_id: str, method: str = "BANK_ACCOUNT") -> dict:
    body = await gql(
        client,
        REQUEST,
        {
            "i": {
                "cardId": card_id,
                "reason": "搬家了",
                "payoutMethod": method,
                "bankAccountNo": "6222 0202 0011 2233" if method == "BANK_ACCOUNT" else None,
                "accountName": "张三" if method == "BANK_ACCOUNT" else None,
            }
        },
        token=token,
    )
    payload: dict = body["data"]["cardCancelRequest"]
    return payload


async def approve(client: Any, token: str, cancellation_id: str) -> dict:
    body = await gql(client, APPROVE, {"i": {"cancellationId": cancellation_id}}, token=token)
    assert "errors" not in body, body
    payload: dict = body["data"]["cardCancelApprove"]
    return payload


async def card_of(client: Any, m: MerchantSetup, card_id: str) -> dict:
    found: dict = (await gql(client, CARD, {"id": card_id}, token=m.staff))["data"]["card"]
    return found


async def test_a_cooling_off_refund_is_unconditional_full_and_paid_once(client, sms):
    from domain.cards.models import CardCancellation

    m = await make_merchant(client)  # Beijing: 7-day cooling-off, paid within 5 days
    product = await make_product(
        client, m, "NAMED", topUpBonusRules=[{"minAmount": 10000, "bonus": 1000}]
    )
    _, consumer, card = await holder_card(client, sms, m, product_id=product, load=20000)
    assert (await pay(client, m, card["id"], 5000))["errors"] == []
    held_before = (await escrow_of(client, m.admin, m.merchant_id))["held"]

    asked = await ask(client, consumer, card["id"])
    assert asked["errors"] == [], asked
    request = asked["cancellation"]
    assert (request["status"], request["coolingOff"], request["bankAccount"]) == (
        "REQUESTED",
        True,
        "**** 2233",
    )
    due = datetime.fromisoformat(request["payBy"]) - clock.now()
    assert timedelta(days=4, hours=23) < due <= timedelta(days=5)
    stored = await CardCancellation.get(id=request["id"])
    assert "6222020200112233" not in (stored.bank_account_encrypted or "")
    twice = await ask(client, consumer, card["id"])
    assert twice["errors"][0]["code"] == "ALREADY_REQUESTED"

    refused = await gql(
        client, REJECT, {"i": {"cancellationId": request["id"], "note": "不退"}}, token=m.admin
    )
    assert (
        refused["data"]["cardCancelReject"]["errors"][0]["code"] == "COOLING_OFF_REFUND_MANDATORY"
    )
    by_consumer = await gql(
        client, APPROVE, {"i": {"cancellationId": request["id"]}}, token=consumer
    )
    assert by_consumer["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    results = await asyncio.gather(*(approve(client, m.admin, request["id"]) for _ in range(5)))
    assert {r["cancellation"]["status"] for r in results} == {"COMPLETED"}
    done = results[0]["cancellation"]
    # 20000 principal + 1000 bonus, 5000 spent principal first: 15000 back, 1000 forfeited.
    assert (done["principalRefunded"], done["bonusForfeited"]) == (15000, 1000)
    after = await card_of(client, m, card["id"])
    assert (after["status"], after["balance"]) == ("CANCELLED", 0)
    assert after["transactions"]["edges"][0]["node"] == {
        "type": "CANCEL",
        "amount": -16000,
        "balanceAfter": 0,
    }
    assert (await pay(client, m, card["id"], 1))["errors"][0]["code"] == "CARD_NOT_ACTIVE"
    # 40 % of the 15000 paid back leaves escrow with it.
    assert (await escrow_of(client, m.admin, m.merchant_id))["held"] == held_before - 6000
    await ledger_ok()


async def test_outside_cooling_off_the_merchant_decides_and_cash_is_limited(client, sms):
    from domain.cards.models import Card

    m = await make_merchant(client)
    _, consumer, card = await holder_card(client, sms, m, load=30000)
    # Bought eight days ago: past Beijing's 7-day cooling-off.
    await Card.filter(id=card["id"]).update(created_at=clock.now() - timedelta(days=8))
    cash = await ask(client, consumer, card["id"], "CASH")
    assert cash["errors"][0]["code"] == "CASH_REFUND_LIMIT_EXCEEDED"
    asked = (await ask(client, consumer, card["id"]))["cancellation"]
    assert asked["coolingOff"] is False and asked["payBy"] is None
    rejected = await gql(
        client,
        REJECT,
        {"i": {"cancellationId": asked["id"], "note": "按卡面条款不予退卡"}},
        token=m.admin,
    )
    assert rejected["data"]["cardCancelReject"]["cancellation"]["status"] == "REJECTED"
    late = await approve(client, m.admin, asked["id"])
    assert late["errors"][0]["code"] == "ALREADY_DECIDED"
    again = await ask(client, consumer, card["id"])
    assert again["errors"] == [], again
    paid = await approve(client, m.admin, again["cancellation"]["id"])
    assert paid["cancellation"]["principalRefunded"] == 30000
    await ledger_ok()


async def test_pending_holds_block_the_payout_and_nothing_half_happens(client, sms):
    m = await make_merchant(client)
    _, consumer, card = await holder_card(client, sms, m, load=8000)
    h = (await hold(client, m, card["id"], 1000))["hold"]
    request = (await ask(client, consumer, card["id"], "CASH"))["cancellation"]
    blocked = await approve(client, m.admin, request["id"])
    assert blocked["errors"][0]["code"] == "HOLDS_PENDING"
    still = await card_of(client, m, card["id"])
    assert (still["status"], still["balance"]) == ("ACTIVE", 7000)
    await gql(
        client,
        "mutation($i: HoldIdInput!) { holdRelease(input: $i) { errors { code } } }",
        {"i": {"holdId": h["id"]}},
        token=m.staff,
    )
    done = await approve(client, m.admin, request["id"])
    assert done["cancellation"]["principalRefunded"] == 8000
    await ledger_ok()


async def test_session_cards_forfeit_their_sessions_with_the_refund(client, sms):
    m = await make_merchant(client)
    card = await session_card(client, m, count=10, price=9000)
    body = await gql(
        client,
        REQUEST,
        {"i": {"cardId": card["id"], "reason": "不练了", "payoutMethod": "CASH"}},
        token=m.staff,  # a bearer session card is cancelled at the counter
    )
    request = body["data"]["cardCancelRequest"]["cancellation"]
    done = (await approve(client, m.admin, request["id"]))["cancellation"]
    assert (done["principalRefunded"], done["sessionsForfeited"]) == (9000, 10)
    await ledger_ok()


async def test_the_custodian_pays_out_only_for_a_merchant_that_stopped_trading(client, sms):
    from domain.merchants.models import Merchant

    m = await make_merchant(client)
    bank = f"兜底银行-{secrets.token_hex(3)}"
    custodian = await official(client, m.operator, "CUSTODIAN", bank, "110000")
    assert (await open_escrow(client, m, bank, "FULL_CUSTODY"))["errors"] == []
    _, consumer, card = await holder_card(client, sms, m, load=6000)
    request = (await ask(client, consumer, card["id"], "CASH"))["cancellation"]
    early = await approve(client, custodian, request["id"])
    assert early["errors"][0]["code"] == "NOT_FOUND"

    await Merchant.filter(id=m.merchant_id).update(status="CLOSED")
    done = await approve(client, custodian, request["id"])
    assert done["cancellation"]["principalRefunded"] == 6000
    view = await escrow_of(client, custodian, m.merchant_id)
    assert (view["held"], view["outstanding"]) == (0, 0)
    top = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 100, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    assert top["data"]["topUp"]["errors"][0]["code"] == "CARD_NOT_ACTIVE"
    await ledger_ok()
