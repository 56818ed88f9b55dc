"""Session cards (次卡) through the API: packs, redemption, money per session, refunds, races."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.test_money import ledger_ok
from tests.helpers import (
    CARD_ISSUE,
    PRODUCT_CREATE,
    REFUND,
    TOP_UP,
    MerchantSetup,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
)

REDEEM = """mutation($i: SessionRedeemInput!) { sessionRedeem(input: $i) {
  payment { id amount principalAmount sessions status refundedAmount card { id balance sessions } }
  errors { code field message } } }"""
SESSION_CARD = """query($id: ID!) { card(id: $id) { id kind balance principalBalance sessions
  transactions(first: 50) { edges { node { type amount balanceAfter sessions sessionsAfter } } } } }"""
VOID = """mutation($i: PaymentVoidInput!) { paymentVoid(input: $i) {
  refund { id amount } errors { code } } }"""


async def session_card(
    client: Any, m: MerchantSetup, *, count: int, price: int, packs: int = 1
) -> dict[str, Any]:
    product = await make_product(client, m, "SESSION", sessionCount=count, sessionPrice=price)
    return await make_card(client, m, product_id=product, kind="SESSION", load=price * packs)


async def redeem(
    client: Any,
    m: MerchantSetup,
    card_id: str,
    sessions: int = 1,
    idem: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    body = await gql(
        client,
        REDEEM,
        {
            "i": {
                "storeId": m.store_id,
                "cardId": card_id,
                "sessions": sessions,
                "idempotencyKey": idem or key(),
            }
        },
        token=token or m.staff,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["sessionRedeem"]
    return result


async def card_state(client: Any, m: MerchantSetup, card_id: str) -> dict[str, Any]:
    body = await gql(client, SESSION_CARD, {"id": card_id}, token=m.staff)
    card: dict[str, Any] = body["data"]["card"]
    return card


async def test_session_products_are_validated(client):
    m = await make_merchant(client)

    async def create(**extra: Any) -> dict[str, Any]:
        body = await gql(
            client,
            PRODUCT_CREATE,
            {"i": {"merchantId": m.merchant_id, "name": "次卡", **extra}},
            token=m.admin,
        )
        payload: dict[str, Any] = body["data"]["cardProductCreate"]
        return payload

    missing = await create(kind="SESSION", sessionPrice=1000)
    assert missing["errors"][0]["field"] == "sessionCount"
    cheap = await create(kind="SESSION", sessionCount=10, sessionPrice=9)
    assert cheap["errors"][0]["field"] == "sessionPrice"
    bonus = await create(
        kind="SESSION",
        sessionCount=10,
        sessionPrice=1000,
        topUpBonusRules=[{"minAmount": 1000, "bonus": 100}],
    )
    assert bonus["errors"][0]["field"] == "topUpBonusRules"
    not_session = await create(kind="NAMED", sessionCount=10)
    assert not_session["errors"][0]["field"] == "sessionCount"
    ok = await create(kind="SESSION", sessionCount=10, sessionPrice=30000)
    assert ok["errors"] == [] and ok["cardProduct"]["kind"] == "SESSION"


async def test_buy_redeem_top_up_and_use_up_a_session_card(client):
    m = await make_merchant(client)
    product = await make_product(client, m, "SESSION", sessionCount=10, sessionPrice=30000)
    wrong = await gql(
        client,
        CARD_ISSUE,
        {"i": {"productId": product, "initialLoad": 25000, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert wrong["data"]["cardIssue"]["errors"][0]["code"] == "SESSION_PACK_MISMATCH"

    card = await make_card(client, m, product_id=product, kind="SESSION", load=30000)
    state = await card_state(client, m, card["id"])
    assert (state["kind"], state["sessions"], state["balance"]) == ("SESSION", 10, 30000)

    one = await redeem(client, m, card["id"])
    assert one["errors"] == []
    assert one["payment"]["sessions"] == 1 and one["payment"]["amount"] == 3000
    assert one["payment"]["card"] == {"id": card["id"], "balance": 27000, "sessions": 9}

    three = await redeem(client, m, card["id"], 3)
    assert three["payment"]["amount"] == 9000

    body = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 30000, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["topUp"]["errors"] == [], body
    state = await card_state(client, m, card["id"])
    assert (state["sessions"], state["balance"]) == (16, 48000)

    rest = await redeem(client, m, card["id"], 16)
    assert rest["payment"]["amount"] == 48000
    assert rest["payment"]["card"]["sessions"] == 0 and rest["payment"]["card"]["balance"] == 0
    empty = await redeem(client, m, card["id"])
    assert empty["errors"][0]["code"] == "INSUFFICIENT_SESSIONS"

    lines = [e["node"] for e in (await card_state(client, m, card["id"]))["transactions"]["edges"]]
    assert [(n["type"], n["sessions"], n["sessionsAfter"]) for n in lines] == [
        ("PAYMENT", -16, 0),
        ("TOPUP", 10, 16),
        ("PAYMENT", -3, 6),
        ("PAYMENT", -1, 9),
        ("ISSUE", 10, 10),
    ]
    await ledger_ok()


async def test_uneven_money_per_session_runs_out_exactly_with_the_sessions(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=3, price=1000)
    amounts = [(await redeem(client, m, card["id"]))["payment"]["amount"] for _ in range(3)]
    assert amounts == [333, 333, 334] and sum(amounts) == 1000
    assert (await card_state(client, m, card["id"]))["balance"] == 0


async def test_session_and_money_cards_are_not_mixed_up(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=5, price=5000)
    paid = await pay(client, m, card["id"], 100)
    assert paid["errors"][0]["code"] == "CARD_KIND_NOT_SUPPORTED"
    money_card = await make_card(client, m, load=5000)
    redeemed = await redeem(client, m, money_card["id"])
    assert redeemed["errors"][0]["code"] == "CARD_KIND_NOT_SUPPORTED"
    too_many = await redeem(client, m, card["id"], 101)
    assert too_many["errors"][0]["field"] == "sessions"
    none = await redeem(client, m, card["id"], 0)
    assert none["errors"][0]["field"] == "sessions"
    other = await make_merchant(client)
    foreign = await redeem(client, other, card["id"])
    assert foreign["errors"][0]["code"] == "NOT_FOUND"
    state = await card_state(client, m, card["id"])
    assert (state["sessions"], state["balance"]) == (5, 5000)


async def test_redemptions_are_refunded_whole_with_their_sessions(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=10, price=10000)
    first = (await redeem(client, m, card["id"], 2))["payment"]
    second = (await redeem(client, m, card["id"], 1))["payment"]
    assert (first["amount"], second["amount"]) == (2000, 1000)

    part = await gql(
        client,
        REFUND,
        {"i": {"paymentId": first["id"], "amount": 1000, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert part["data"]["refund"]["errors"][0]["code"] == "SESSION_REFUND_WHOLE_ONLY"
    whole = await gql(
        client,
        REFUND,
        {"i": {"paymentId": first["id"], "amount": 2000, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert whole["data"]["refund"]["errors"] == [], whole
    assert whole["data"]["refund"]["refund"]["payment"]["status"] == "REFUNDED"
    state = await card_state(client, m, card["id"])
    assert (state["sessions"], state["balance"]) == (9, 9000)

    voided = await gql(
        client, VOID, {"i": {"paymentId": second["id"], "idempotencyKey": key()}}, token=m.staff
    )
    assert voided["data"]["paymentVoid"]["errors"] == [], voided
    again = await gql(
        client, VOID, {"i": {"paymentId": second["id"], "idempotencyKey": key()}}, token=m.staff
    )
    assert again["data"]["paymentVoid"]["errors"][0]["code"] == "ALREADY_REVERSED"
    state = await card_state(client, m, card["id"])
    assert (state["sessions"], state["balance"]) == (10, 10000)
    await ledger_ok()


async def test_replacing_a_session_card_moves_its_sessions(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=4, price=2000)
    await redeem(client, m, card["id"])
    body = await gql(
        client,
        """mutation($i: CardReplaceInput!) { cardReplace(input: $i) {
             card { id sessions balance } errors { code } } }""",
        {"i": {"cardId": card["id"], "idempotencyKey": key()}},
        token=m.staff,
    )
    new = body["data"]["cardReplace"]["card"]
    assert (new["sessions"], new["balance"]) == (3, 1500)
    old = await card_state(client, m, card["id"])
    assert (old["sessions"], old["balance"]) == (0, 0)
    assert (await redeem(client, m, new["id"], 3))["payment"]["amount"] == 1500
    await ledger_ok()


async def test_a_retried_redemption_applies_once(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=10, price=10000)
    k = key()
    results = await asyncio.gather(*(redeem(client, m, card["id"], 2, idem=k) for _ in range(8)))
    assert len({r["payment"]["id"] for r in results}) == 1
    assert (await card_state(client, m, card["id"]))["sessions"] == 8
    reused = await redeem(client, m, card["id"], 3, idem=k)
    assert reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_redemptions_never_overdraw_sessions_or_money(client):
    m = await make_merchant(client)
    card = await session_card(client, m, count=10, price=10007)
    results = await asyncio.gather(*(redeem(client, m, card["id"]) for _ in range(25)))
    ok = [r["payment"] for r in results if not r["errors"]]
    refused = [r["errors"][0]["code"] for r in results if r["errors"]]
    assert len(ok) == 10 and set(refused) == {"INSUFFICIENT_SESSIONS"}
    assert sum(p["amount"] for p in ok) == 10007
    state = await card_state(client, m, card["id"])
    assert (state["sessions"], state["balance"]) == (0, 0)
    await ledger_ok()
