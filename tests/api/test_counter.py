"""The counter desk (柜面) through the API: shifts, counter transactions, the daily close (日结)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from domain import clock
from tests.helpers import (
    CARD_ISSUE,
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

SHIFT_OPEN = """mutation($i: ShiftOpenInput!) { shiftOpen(input: $i) {
  shift { id status openingFloat businessDay } errors { code field } } }"""
SHIFT_CLOSE = """mutation($i: ShiftCloseInput!) { shiftClose(input: $i) {
  shift { id status expectedCash countedCash variance } errors { code field } } }"""
DAILY_CLOSE = """mutation($i: DailyCloseInput!) { dailyClose(input: $i) {
  dailyClose { businessDay closed expectedCash totals { kind channel count amount cash } }
  errors { code field } } }"""
REPORT = """query($id: ID!, $day: String) { dailyCloseReport(storeId: $id, businessDay: $day) {
  businessDay closed expectedCash totals { kind channel staffId count amount cash } } }"""


async def top_up(
    client: Any, m: MerchantSetup, card_id: str, amount: int, channel: str = "CASH", **extra: Any
) -> dict[str, Any]:
    token = extra.pop("token", None) or m.staff
    body = await gql(
        client,
        TOP_UP,
        {
            "i": {
                "cardId": card_id,
                "amount": amount,
                "channel": channel,
                "idempotencyKey": key(),
                **extra,
            }
        },
        token=token,
    )
    payload: dict[str, Any] = body["data"]["topUp"]
    return payload


def totals(report: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int]]:
    out: dict[tuple[str, str], tuple[int, int, int]] = {}
    for t in report["totals"]:
        count, amount, cash = out.get((t["kind"], t["channel"]), (0, 0, 0))
        out[(t["kind"], t["channel"])] = (
            count + t["count"],
            amount + t["amount"],
            cash + t["cash"],
        )
    return out


async def test_a_day_at_the_counter_is_totalled_by_type_and_channel_and_locked(client):
    m = await make_merchant(client)
    opened = await gql(
        client, SHIFT_OPEN, {"i": {"storeId": m.store_id, "openingFloat": 50000}}, token=m.staff
    )
    shift = opened["data"]["shiftOpen"]["shift"]
    assert (shift["status"], shift["openingFloat"]) == ("OPEN", 50000)
    twice = await gql(client, SHIFT_OPEN, {"i": {"storeId": m.store_id}}, token=m.staff)
    assert twice["data"]["shiftOpen"]["errors"][0]["code"] == "SHIFT_ALREADY_OPEN"
    elsewhere = await gql(client, SHIFT_OPEN, {"i": {"storeId": m.other_store_id}}, token=m.staff)
    assert elsewhere["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    product = await make_product(client, m, "BEARER")
    sold = await gql(
        client,
        CARD_ISSUE,
        {
            "i": {
                "productId": product,
                "initialLoad": 20000,
                "channel": "BANK_CARD",
                "idempotencyKey": key(),
            }
        },
        token=m.staff,
    )
    card = sold["data"]["cardIssue"]["card"]
    assert (await top_up(client, m, card["id"], 10000))["errors"] == []
    assert (await top_up(client, m, card["id"], 5000, "BANK_CARD"))["errors"] == []
    payment = (await pay(client, m, card["id"], 3000))["payment"]
    refunded = await gql(
        client,
        REFUND,
        {"i": {"paymentId": payment["id"], "amount": 1000, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert refunded["data"]["refund"]["errors"] == []

    assert (await top_up(client, m, card["id"], 2000))["errors"] == []
    # The terminal's top-up opens the terminal's own shift by itself.
    by_terminal = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 700, "channel": "CASH", "idempotencyKey": key()}},
        terminal_key=m.terminal_key,
    )
    assert by_terminal["data"]["topUp"]["errors"] == [], by_terminal

    report = (await gql(client, REPORT, {"id": m.store_id}, token=m.admin))["data"][
        "dailyCloseReport"
    ]
    assert report["closed"] is False
    assert totals(report) == {
        ("CARD_SALE", "BANK_CARD"): (1, 20000, 0),
        ("TOP_UP", "CASH"): (3, 12700, 12700),
        ("TOP_UP", "BANK_CARD"): (1, 5000, 0),
        ("REFUND", "CARD"): (1, 1000, 0),
    }
    assert report["expectedCash"] == 50000 + 12700

    blocked = await gql(client, DAILY_CLOSE, {"i": {"storeId": m.store_id}}, token=m.admin)
    assert blocked["data"]["dailyClose"]["errors"][0]["code"] == "SHIFT_STILL_OPEN"
    closed_shift = await gql(
        client,
        SHIFT_CLOSE,
        {"i": {"shiftId": shift["id"], "countedCash": 50000 + 12000 - 100}},
        token=m.staff,
    )
    s = closed_shift["data"]["shiftClose"]["shift"]
    assert (s["status"], s["expectedCash"], s["variance"]) == ("CLOSED", 62000, -100)
    terminal_shift = await gql(
        client, SHIFT_OPEN, {"i": {"storeId": m.store_id}}, terminal_key=m.terminal_key
    )
    assert terminal_shift["data"]["shiftOpen"]["errors"][0]["code"] == "SHIFT_ALREADY_OPEN"
    from domain.counter.models import Shift

    open_one = await Shift.get(store_id=m.store_id, status="OPEN")
    await gql(
        client,
        SHIFT_CLOSE,
        {"i": {"shiftId": open_one.id, "countedCash": 700}},
        terminal_key=m.terminal_key,
    )

    done = await gql(client, DAILY_CLOSE, {"i": {"storeId": m.store_id}}, token=m.admin)
    day = done["data"]["dailyClose"]["dailyClose"]
    assert day["closed"] is True and day["businessDay"] == clock.beijing_day()
    assert day["expectedCash"] == 62700
    again = await gql(
        client,
        DAILY_CLOSE,
        {"i": {"storeId": m.store_id, "businessDay": day["businessDay"]}},
        token=m.admin,
    )
    assert again["data"]["dailyClose"]["errors"][0]["code"] == "DAY_CLOSED"

    # A correction after the close is a new transaction of the next business day.
    assert (await top_up(client, m, card["id"], 300))["errors"] == []
    today = (
        await gql(client, REPORT, {"id": m.store_id, "day": day["businessDay"]}, token=m.staff)
    )["data"]["dailyCloseReport"]
    assert today["closed"] is True and totals(today)[("TOP_UP", "CASH")] == (3, 12700, 12700)
    tomorrow = (date.fromisoformat(day["businessDay"]) + timedelta(days=1)).isoformat()
    nxt = (await gql(client, REPORT, {"id": m.store_id, "day": tomorrow}, token=m.staff))["data"][
        "dailyCloseReport"
    ]
    assert nxt["closed"] is False and totals(nxt) == {("TOP_UP", "CASH"): (1, 300, 300)}


async def test_counter_money_needs_a_store_and_stays_in_the_merchant(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=1000)
    no_store = await top_up(client, m, card["id"], 100, token=m.admin)
    assert no_store["errors"][0]["field"] == "storeId"
    with_store = await top_up(client, m, card["id"], 100, token=m.admin, storeId=m.store_id)
    assert with_store["errors"] == []
    other = await make_merchant(client)
    assert (await gql(client, REPORT, {"id": m.store_id}, token=other.admin))["errors"][0][
        "extensions"
    ]["code"] == "FORBIDDEN"
    foreign_close = await gql(
        client, DAILY_CLOSE, {"i": {"storeId": m.store_id}}, token=other.staff
    )
    assert foreign_close["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad_day = await gql(
        client,
        DAILY_CLOSE,
        {"i": {"storeId": m.store_id, "businessDay": "23/11/2026"}},
        token=m.admin,
    )
    assert bad_day["data"]["dailyClose"]["errors"][0]["field"] == "businessDay"
