"""balanceChanged through a real websocket client against the app served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from websockets.asyncio.client import connect

from tests.helpers import consumer_token, make_card, make_merchant, pay

SUB = "subscription($id: ID!) { balanceChanged(cardId: $id) { cardId balance delta reason transactionId } }"


async def open_subscription(server_url: str, token: str, card_id: str) -> Any:
    ws = await connect(f"ws://{server_url}/graphql", subprotocols=["graphql-transport-ws"])
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack", ack
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUB, "variables": {"id": card_id}},
            }
        )
    )
    await asyncio.sleep(0.3)  # let the server subscribe to the broker before money moves
    return ws


async def next_message(ws: Any, wait: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def test_holder_hears_each_committed_change_once(client, sms, server_url):
    m = await make_merchant(client)
    phone = "134" + f"{secrets.randbelow(10**8):08d}"
    holder = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=5000, holder_phone=phone)
    ws = await open_subscription(server_url, holder, card["id"])
    try:
        paid = await pay(client, m, card["id"], 1200)
        event = await next_message(ws)
        assert event["type"] == "next", event
        data = event["payload"]["data"]["balanceChanged"]
        assert data == {
            "cardId": card["id"],
            "balance": 3800,
            "delta": -1200,
            "reason": "PAYMENT",
            "transactionId": data["transactionId"],
        }
        # A refused payment (rolled back) publishes nothing; the next real one does.
        refused = await pay(client, m, card["id"], 999_999)
        assert refused["errors"][0]["code"] == "INSUFFICIENT_FUNDS"
        await pay(client, m, card["id"], 300)
        event = await next_message(ws)
        assert event["payload"]["data"]["balanceChanged"]["balance"] == 3500
        assert paid["payment"]["id"]
    finally:
        await ws.close()


async def test_staff_of_the_merchant_hears_it_and_others_are_refused(client, sms, server_url):
    a = await make_merchant(client)
    b = await make_merchant(client, a.operator)
    card = await make_card(client, a, load=1000)
    ws = await open_subscription(server_url, a.admin, card["id"])
    try:
        await pay(client, a, card["id"], 100)
        event = await next_message(ws)
        assert event["payload"]["data"]["balanceChanged"]["balance"] == 900
    finally:
        await ws.close()
    for token in (b.staff, await consumer_token(client, sms)):
        ws = await open_subscription(server_url, token, card["id"])
        try:
            event = await next_message(ws)
            errors = event["payload"] if event["type"] == "error" else event["payload"]["errors"]
            assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], event
            assert not (event["payload"].get("data") if event["type"] == "next" else None)
        finally:
            await ws.close()


async def test_events_committed_while_the_relay_is_down_are_published_on_restart(
    app, client, sms, server_url
):
    state = app.state.yikatong
    m = await make_merchant(client)
    phone = "133" + f"{secrets.randbelow(10**8):08d}"
    holder = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=2000, holder_phone=phone)
    ws = await open_subscription(server_url, holder, card["id"])
    await state.relay.stop()  # as if the process died between commit and publish
    try:
        await pay(client, m, card["id"], 500)
        try:
            await asyncio.wait_for(ws.recv(), 0.5)
            raise AssertionError("published without the relay")
        except TimeoutError:
            pass
        state.relay.start()  # the restart finds the unpublished row
        event = await next_message(ws)
        assert event["payload"]["data"]["balanceChanged"]["balance"] == 1500
    finally:
        if state.relay._task is None or state.relay._task.done():
            state.relay.start()
        await ws.close()


async def test_relay_marks_what_it_published(app, client):
    from domain.outbox.models import OutboxEvent

    m = await make_merchant(client)
    card = await make_card(client, m, load=1000)
    await pay(client, m, card["id"], 100)
    for _ in range(50):
        if not await OutboxEvent.filter(published_at__isnull=True).exists():
            break
        await asyncio.sleep(0.1)
    assert not await OutboxEvent.filter(published_at__isnull=True).exists()
    published = await OutboxEvent.filter(channel=f"card:{card['id']}").count()
    assert published == 2  # the issue load and the payment, each once
