"""Terminal charges paid by a reader tap: one charge is paid at most once, one tap pays at most
one charge, however often and however concurrently the bridge reports it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from websockets.asyncio.client import connect

from tests.api.terminal_helpers import (
    CHARGE_CANCEL,
    CHARGE_CREATE,
    balance,
    charge_state,
    create_charge,
    payments_of,
    tap,
    uid_card,
)
from tests.helpers import gql, key, make_merchant


async def test_a_tap_pays_the_waiting_charge_and_the_ledger_shows_it(client):
    m = await make_merchant(client)
    card, uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 1234)
    assert charge["status"] == "PENDING" and charge["storeId"] == m.store_id
    paid = await tap(client, m.terminal_key, uid.lower())
    assert paid["errors"] == [], paid
    assert paid["payment"]["amount"] == 1234
    assert paid["payment"]["card"] == {"id": card["id"], "balance": 5000 - 1234}
    assert paid["terminalCharge"] == {"id": charge["id"], "status": "SUCCEEDED"}
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "SUCCEEDED" and state["paymentId"] == paid["payment"]["id"]
    assert [p["amount"] for p in await payments_of(client, m, card["id"])] == [-1234]


async def test_the_same_tap_reported_again_never_pays_twice(client):
    m = await make_merchant(client)
    card, uid = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 700)
    tap_key = key()
    first = await tap(client, m.terminal_key, uid, tap_key)
    # The tablet is already waiting for the next customer when the retry arrives.
    await create_charge(client, m.terminal_key, 900)
    again = await tap(client, m.terminal_key, uid, tap_key)
    assert again["payment"]["id"] == first["payment"]["id"]
    assert await balance(client, m, card["id"]) == 4300
    # The same key with another card is a different request.
    _, other_uid = await uid_card(client, m, load=5000)
    reused = await tap(client, m.terminal_key, other_uid, tap_key)
    assert reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_concurrent_reports_of_one_tap_pay_once(client):
    m = await make_merchant(client)
    card, uid = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 500)
    await create_charge(client, m.terminal_key, 600)
    tap_key = key()
    results = await asyncio.gather(*(tap(client, m.terminal_key, uid, tap_key) for _ in range(6)))
    ids = {r["payment"]["id"] for r in results if r["payment"]}
    assert len(ids) == 1, results
    assert await balance(client, m, card["id"]) == 4500  # the older charge, once


async def test_two_cards_racing_for_one_charge_pay_it_once(client):
    m = await make_merchant(client)
    a, uid_a = await uid_card(client, m, load=5000)
    b, uid_b = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 800)
    results = await asyncio.gather(
        tap(client, m.terminal_key, uid_a), tap(client, m.terminal_key, uid_b)
    )
    paid = [r for r in results if r["payment"]]
    assert len(paid) == 1, results
    refused = [r for r in results if not r["payment"]]
    assert refused[0]["errors"][0]["code"] == "NO_PENDING_CHARGE"
    total = await balance(client, m, a["id"]) + await balance(client, m, b["id"])
    assert total == 10_000 - 800
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "SUCCEEDED"


async def test_no_pending_charge_charges_nothing(client):
    m = await make_merchant(client)
    card, uid = await uid_card(client, m, load=5000)
    refused = await tap(client, m.terminal_key, uid)
    assert refused["errors"][0]["code"] == "NO_PENDING_CHARGE" and refused["payment"] is None
    # A tap older than the charge (queued by the bridge while the API was away) pays nothing.
    await create_charge(client, m.terminal_key, 300)
    stale = await tap(client, m.terminal_key, uid, tapAgeMs=60_000)
    assert stale["errors"][0]["code"] == "NO_PENDING_CHARGE"
    assert await balance(client, m, card["id"]) == 5000
    # Another terminal's charge is not this terminal's.
    other = await make_merchant(client, m.operator)
    await create_charge(client, other.terminal_key, 300)
    fresh = await tap(client, m.terminal_key, uid)
    assert fresh["payment"]["amount"] == 300


async def test_refused_tap_leaves_the_charge_waiting_for_another_card(client):
    m = await make_merchant(client)
    poor, poor_uid = await uid_card(client, m, load=100)
    rich, rich_uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 1000)
    refused = await tap(client, m.terminal_key, poor_uid)
    assert refused["errors"][0]["code"] == "INSUFFICIENT_FUNDS"
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "PENDING"
    assert state["lastError"]["code"] == "INSUFFICIENT_FUNDS"
    paid = await tap(client, m.terminal_key, rich_uid)
    assert paid["payment"]["card"]["id"] == rich["id"]
    assert await balance(client, m, poor["id"]) == 100


async def test_charge_idempotency_cancel_and_expiry(client):
    from domain import clock

    m = await make_merchant(client)
    card, uid = await uid_card(client, m, load=5000)
    idem = key()
    charge = await create_charge(client, m.terminal_key, 400, idem)
    assert (await create_charge(client, m.terminal_key, 400, idem))["id"] == charge["id"]
    body = await gql(
        client,
        CHARGE_CREATE,
        {"i": {"amount": 401, "idempotencyKey": idem}},
        terminal_key=m.terminal_key,
    )
    assert body["data"]["terminalChargeCreate"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # The store's staff cancel it; a tap then pays nothing.
    body = await gql(client, CHARGE_CANCEL, {"i": {"chargeId": charge["id"]}}, token=m.staff)
    assert body["data"]["terminalChargeCancel"]["terminalCharge"]["status"] == "CANCELLED"
    assert (await tap(client, m.terminal_key, uid))["errors"][0]["code"] == "NO_PENDING_CHARGE"
    again = await gql(
        client, CHARGE_CANCEL, {"i": {"chargeId": charge["id"]}}, terminal_key=m.terminal_key
    )
    assert again["data"]["terminalChargeCancel"]["errors"][0]["code"] == "CHARGE_NOT_PENDING"
    # A charge nobody paid within its time expires.
    late = await create_charge(client, m.terminal_key, 400)
    clock.advance(timedelta(seconds=121))
    try:
        assert (await charge_state(client, m.terminal_key, late["id"]))["status"] == "EXPIRED"
        assert (await tap(client, m.terminal_key, uid))["errors"][0]["code"] == (
            "NO_PENDING_CHARGE"
        )
    finally:
        clock.reset()
    assert await balance(client, m, card["id"]) == 5000


async def test_other_merchants_cannot_see_or_cancel_a_charge(client):
    m = await make_merchant(client)
    other = await make_merchant(client, m.operator)
    charge = await create_charge(client, m.terminal_key, 400)
    assert await charge_state(client, other.terminal_key, charge["id"]) is None
    body = await gql(client, CHARGE_CANCEL, {"i": {"chargeId": charge["id"]}}, token=other.admin)
    assert body["data"]["terminalChargeCancel"]["errors"][0]["code"] == "NOT_FOUND"


async def test_a_payment_made_but_not_recorded_on_the_charge_is_found(client):
    """A crash between the payment and the charge's update: the payment is the truth."""
    from domain.terminals.models import TerminalCharge

    m = await make_merchant(client)
    _card, uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 250)
    paid = await tap(client, m.terminal_key, uid)
    await TerminalCharge.filter(id=charge["id"]).update(
        status="PENDING", payment_id=None, completed_at=None
    )
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "SUCCEEDED" and state["paymentId"] == paid["payment"]["id"]


SUB = """subscription($id: ID!) { terminalChargeUpdated(chargeId: $id) {
  chargeId status amount paymentId error { code } } }"""


async def test_the_tablet_hears_the_result_over_a_websocket(client, server_url):
    m = await make_merchant(client)
    _poor, poor_uid = await uid_card(client, m, load=10)
    _card, uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 990)
    ws = await connect(f"ws://{server_url}/graphql", subprotocols=["graphql-transport-ws"])
    try:
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Terminal {m.terminal_key}"},
                }
            )
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUB, "variables": {"id": charge["id"]}},
                }
            )
        )

        async def event() -> dict:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "next", message
            return message["payload"]["data"]["terminalChargeUpdated"]

        assert (await event())["status"] == "PENDING"
        await tap(client, m.terminal_key, poor_uid)
        refused = await event()
        assert refused["status"] == "PENDING" and refused["error"]["code"] == "INSUFFICIENT_FUNDS"
        paid = await tap(client, m.terminal_key, uid)
        done = await event()
        assert done["status"] == "SUCCEEDED" and done["paymentId"] == paid["payment"]["id"]
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "complete"
    finally:
        await ws.close()
