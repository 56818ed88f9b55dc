"""Two-phase card payments (预授权) through the API: hold, capture part or all, release, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from domain import clock
from tests.api.test_money import ledger_ok
from tests.helpers import (
    CARD,
    REFUND,
    MerchantSetup,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
)

HOLD = """mutation($i: CardHoldInput!) { cardHold(input: $i) {
  hold { id amount capturedAmount status reference expiresAt card { id balance } }
  errors { code field message } } }"""
CAPTURE = """mutation($i: HoldCaptureInput!) { holdCapture(input: $i) {
  hold { id amount capturedAmount status paymentId card { id balance principalBalance bonusBalance } }
  errors { code field message } } }"""
RELEASE = """mutation($i: HoldIdInput!) { holdRelease(input: $i) {
  hold { id status card { id balance } } errors { code field message } } }"""
HOLD_QUERY = "query($id: ID!) { hold(id: $id) { id status capturedAmount } }"
PAYMENT = (
    """query($id: ID!) { payment(id: $id) { id amount principalAmount bonusAmount status } }"""
)


async def hold(
    client: Any, m: MerchantSetup, card_id: str, amount: int, **extra: Any
) -> dict[str, Any]:
    body = await gql(
        client,
        HOLD,
        {
            "i": {
                "storeId": m.store_id,
                "cardId": card_id,
                "amount": amount,
                "idempotencyKey": extra.pop("idem", None) or key(),
                **extra,
            }
        },
        token=m.staff,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["cardHold"]
    return result


async def capture(
    client: Any, m: MerchantSetup, hold_id: str, amount: int, idem: str | None = None
) -> dict[str, Any]:
    body = await gql(
        client,
        CAPTURE,
        {"i": {"holdId": hold_id, "amount": amount, "idempotencyKey": idem or key()}},
        token=m.staff,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["holdCapture"]
    return result


async def release(client: Any, m: MerchantSetup, hold_id: str) -> dict[str, Any]:
    body = await gql(client, RELEASE, {"i": {"holdId": hold_id}}, token=m.staff)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["holdRelease"]
    return result


async def balance(client: Any, m: MerchantSetup, card_id: str) -> int:
    body = await gql(client, CARD, {"id": card_id}, token=m.staff)
    return int(body["data"]["card"]["balance"])


async def test_hold_then_capture_part_returns_the_rest(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=10000)
    held = await hold(client, m, card["id"], 3000, reference="booking-42")
    assert held["errors"] == [], held
    h = held["hold"]
    assert (h["status"], h["amount"], h["reference"]) == ("PENDING", 3000, "booking-42")
    assert h["card"]["balance"] == 7000

    too_much = await capture(client, m, h["id"], 3001)
    assert too_much["errors"][0]["code"] == "CAPTURE_EXCEEDS_HOLD"

    k = key()
    done = await capture(client, m, h["id"], 2000, idem=k)
    assert done["errors"] == [], done
    assert (done["hold"]["status"], done["hold"]["capturedAmount"]) == ("CAPTURED", 2000)
    assert done["hold"]["card"]["balance"] == 8000
    again = await capture(client, m, h["id"], 2000, idem=k)
    assert again["hold"]["paymentId"] == done["hold"]["paymentId"]
    second = await capture(client, m, h["id"], 500)
    assert second["errors"][0]["code"] == "HOLD_NOT_PENDING"
    assert (await release(client, m, h["id"]))["errors"][0]["code"] == "HOLD_NOT_PENDING"

    payment = await gql(client, PAYMENT, {"id": done["hold"]["paymentId"]}, token=m.staff)
    assert payment["data"]["payment"]["amount"] == 2000
    statement = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    lines = [e["node"] for e in statement["data"]["card"]["transactions"]["edges"]]
    assert [(n["type"], n["amount"], n["balanceAfter"]) for n in lines[:2]] == [
        ("HOLD_CAPTURE", 1000, 8000),
        ("HOLD", -3000, 7000),
    ]
    assert await balance(client, m, card["id"]) == 8000
    await ledger_ok()


async def test_capture_follows_the_spending_order_and_refunds_go_back_to_sub_balances(client):
    m = await make_merchant(client)
    product = await make_product(
        client, m, "NAMED", topUpBonusRules=[{"minAmount": 1000, "bonus": 500}]
    )
    card = await make_card(client, m, product_id=product, load=1000)  # 1000 principal + 500 bonus
    h = (await hold(client, m, card["id"], 1200))["hold"]
    done = await capture(client, m, h["id"], 1100)
    after = done["hold"]["card"]
    # Principal first: the hold took 1000 principal + 200 bonus, the capture 1000 + 100.
    assert (after["principalBalance"], after["bonusBalance"]) == (0, 400)
    payment = (await gql(client, PAYMENT, {"id": done["hold"]["paymentId"]}, token=m.staff))[
        "data"
    ]["payment"]
    assert (payment["principalAmount"], payment["bonusAmount"]) == (1000, 100)
    body = await gql(
        client,
        REFUND,
        {"i": {"paymentId": payment["id"], "amount": 1100, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["refund"]["errors"] == [], body
    card_now = (await gql(client, CARD, {"id": card["id"]}, token=m.staff))["data"]["card"]
    assert (card_now["principalBalance"], card_now["bonusBalance"]) == (1000, 500)
    await ledger_ok()


async def test_release_gives_everything_back_once(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=5000)
    h = (await hold(client, m, card["id"], 5000))["hold"]
    assert await balance(client, m, card["id"]) == 0
    first = await release(client, m, h["id"])
    assert first["errors"] == [] and first["hold"]["status"] == "RELEASED"
    assert first["hold"]["card"]["balance"] == 5000
    second = await release(client, m, h["id"])
    assert second["errors"] == [] and second["hold"]["card"]["balance"] == 5000
    late = await capture(client, m, h["id"], 100)
    assert late["errors"][0]["code"] == "HOLD_NOT_PENDING"
    await ledger_ok()


async def test_holds_cannot_overdraw_a_card(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=10000)
    results = await asyncio.gather(*(hold(client, m, card["id"], 1000) for _ in range(20)))
    ok = [r for r in results if not r["errors"]]
    assert len(ok) == 10
    assert {r["errors"][0]["code"] for r in results if r["errors"]} == {"INSUFFICIENT_FUNDS"}
    assert await balance(client, m, card["id"]) == 0
    await ledger_ok()


async def test_a_hold_is_captured_or_released_never_both(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=10000)
    holds = [(await hold(client, m, card["id"], 1000))["hold"]["id"] for _ in range(5)]
    outcomes = await asyncio.gather(
        *(
            op
            for h in holds
            for op in (
                capture(client, m, h, 600),
                release(client, m, h),
                capture(client, m, h, 700),
            )
        )
    )
    captured = 0
    for h in holds:
        state = (await gql(client, HOLD_QUERY, {"id": h}, token=m.staff))["data"]["hold"]
        assert state["status"] in ("CAPTURED", "RELEASED")
        captured += state["capturedAmount"]
    wins = [o for o in outcomes if not o["errors"] and o["hold"]["status"] == "CAPTURED"]
    assert captured == sum(w["hold"]["capturedAmount"] for w in wins)
    assert await balance(client, m, card["id"]) == 10000 - captured
    await ledger_ok()


async def test_holds_expire_by_the_database_clock(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=10000)
    short = (await hold(client, m, card["id"], 1000, expiresInSeconds=60))["hold"]
    swept = (await hold(client, m, card["id"], 2000, expiresInSeconds=120))["hold"]
    kept = (await hold(client, m, card["id"], 3000))["hold"]  # 7 days
    bad = await hold(client, m, card["id"], 100, expiresInSeconds=10)
    assert bad["errors"][0]["field"] == "expiresInSeconds"

    from domain.payments.holds import expire_due

    clock.advance(timedelta(seconds=61))
    try:
        late = await capture(client, m, short["id"], 1000)
        assert late["errors"][0]["code"] == "HOLD_EXPIRED"
        assert await balance(client, m, card["id"]) == 5000
        clock.advance(timedelta(seconds=60))
        assert await expire_due() >= 1
        state = (await gql(client, HOLD_QUERY, {"id": swept["id"]}, token=m.staff))["data"]
        assert state["hold"]["status"] == "EXPIRED"
        assert await balance(client, m, card["id"]) == 7000
        assert (await capture(client, m, kept["id"], 3000))["errors"] == []
    finally:
        clock.reset()
    statuses = [
        (await gql(client, HOLD_QUERY, {"id": h["id"]}, token=m.staff))["data"]["hold"]["status"]
        for h in (short, swept, kept)
    ]
    assert statuses == ["EXPIRED", "EXPIRED", "CAPTURED"]
    await ledger_ok()


async def test_holds_belong_to_their_merchant_and_card_holder(client, sms):
    from tests.helpers import consumer_token

    m = await make_merchant(client)
    other = await make_merchant(client)
    phone = "136" + "51234567"
    consumer = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=5000, holder_phone=phone)
    h = (await hold(client, m, card["id"], 1000))["hold"]
    seen = await gql(client, HOLD_QUERY, {"id": h["id"]}, token=consumer)
    assert seen["data"]["hold"]["status"] == "PENDING"
    assert (await gql(client, HOLD_QUERY, {"id": h["id"]}, token=other.staff))["data"][
        "hold"
    ] is None
    foreign = await capture(client, other, h["id"], 1000)
    assert foreign["errors"][0]["code"] == "NOT_FOUND"
    foreign_hold = await hold(client, other, card["id"], 100)
    assert foreign_hold["errors"][0]["code"] == "NOT_FOUND"
    session_product = await make_product(client, m, "SESSION", sessionCount=2, sessionPrice=2000)
    session = await make_card(client, m, product_id=session_product, kind="SESSION", load=2000)
    refused = await hold(client, m, session["id"], 100)
    assert refused["errors"][0]["code"] == "CARD_KIND_NOT_SUPPORTED"


async def test_a_hold_on_a_replaced_card_comes_back_to_the_new_card(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=5000)
    h = (await hold(client, m, card["id"], 2000))["hold"]
    body = await gql(
        client,
        """mutation($i: CardReplaceInput!) { cardReplace(input: $i) {
             card { id balance } errors { code } } }""",
        {"i": {"cardId": card["id"], "idempotencyKey": key()}},
        token=m.staff,
    )
    new = body["data"]["cardReplace"]["card"]
    assert new["balance"] == 3000
    assert (await release(client, m, h["id"]))["errors"] == []
    assert await balance(client, m, new["id"]) == 5000
    assert await balance(client, m, card["id"]) == 0
    await ledger_ok()
