"""Subscriptions over a real websocket (graphql-transport-ws) against the app served by uvicorn.

`viewerEvents` pushes SESSION_REVOKED when a spent refresh token is presented again (the whole
login family is revoked; the outbox relay publishes the event on channel user:<id>). The HTTP
side goes through the in-process client of the same app, so both share one broker.

A subscription has no "subscribed" acknowledgement in the protocol, so before triggering an
event the tests wait until the broker reports a subscriber on the viewer's channel; otherwise
an event published a moment too early would be lost (pub/sub keeps nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.helpers import PASSWORD, gql, login, make_merchant

PROTOCOL = Subprotocol("graphql-transport-ws")
VIEWER_EVENTS = "subscription { viewerEvents { kind reason at } }"
REQUEST_OTP = """mutation($i: RequestOtpInput!) { requestOtp(input: $i) {
  maskedPhone errors { code } } }"""
LOGIN_OTP = """mutation($i: LoginWithOtpInput!) { loginWithOtp(input: $i) {
  accessToken refreshToken errors { code } } }"""
REFRESH = """mutation($i: RefreshTokenInput!) { refreshToken(input: $i) {
  accessToken refreshToken errors { field code } } }"""


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app from an address of this test's own (OTP guesses are limited per address)."""
    ip = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    transport = httpx.ASGITransport(app=app, client=(ip, 42000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def consumer_login(http: httpx.AsyncClient, sms: Any) -> dict[str, str]:
    """A fresh consumer: access token, refresh token and user id."""
    phone = "136" + f"{secrets.randbelow(10**8):08d}"
    body = await gql(http, REQUEST_OTP, {"i": {"phone": phone}})
    assert body["data"]["requestOtp"]["errors"] == [], body
    body = await gql(http, LOGIN_OTP, {"i": {"phone": phone, "code": sms.last_code(phone)}})
    payload = body["data"]["loginWithOtp"]
    assert payload["errors"] == [], body
    return {**payload, "id": await viewer_id(http, payload["accessToken"])}


async def viewer_id(http: httpx.AsyncClient, access_token: str) -> str:
    body = await gql(http, "{ viewer { id } }", token=access_token)
    return str(body["data"]["viewer"]["id"])


async def refresh(http: httpx.AsyncClient, refresh_token: str) -> dict[str, Any]:
    body = await gql(http, REFRESH, {"i": {"refreshToken": refresh_token}})
    payload: dict[str, Any] = body["data"]["refreshToken"]
    return payload


async def revoke_by_reuse(http: httpx.AsyncClient, refresh_token: str) -> None:
    """Rotate once, then present the spent token again: the family is revoked."""
    rotated = await refresh(http, refresh_token)
    assert rotated["errors"] == [] and rotated["refreshToken"], rotated
    reused = await refresh(http, refresh_token)
    assert [e["code"] for e in reused["errors"]] == ["REFRESH_TOKEN_REUSED"], reused
    assert reused["accessToken"] is None and reused["refreshToken"] is None
    # The rotated token belonged to the same family: it is dead too.
    after = await refresh(http, rotated["refreshToken"])
    assert after["errors"] and after["accessToken"] is None, after


@contextlib.asynccontextmanager
async def ws_connect(server_url: str) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"ws://{server_url}/graphql", subprotocols=[PROTOCOL], open_timeout=5, close_timeout=2
    ) as ws:
        assert ws.subprotocol == PROTOCOL
        yield ws


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, wait: float = 5.0) -> dict[str, Any]:
    """The next protocol message, answering pings on the way."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
        if message["type"] == "ping":
            await send(ws, {"type": "pong"})
            continue
        if message["type"] == "pong":
            continue
        return message


async def init(ws: ClientConnection, payload: dict[str, Any] | None) -> None:
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    await send(ws, message)
    ack = await receive(ws)
    assert ack["type"] == "connection_ack", ack
    assert not ack.get("payload"), ack


async def subscribe(ws: ClientConnection, op_id: str = "1", query: str = VIEWER_EVENTS) -> None:
    await send(ws, {"id": op_id, "type": "subscribe", "payload": {"query": query}})


async def subscribers(app: Any, channel: str) -> int:
    from app.broker import RedisBroker

    broker = app.state.yikatong.broker
    if isinstance(broker, RedisBroker):
        [(_, count)] = await broker.redis.pubsub_numsub(broker.prefix + channel)
        return int(count)
    return len(broker._subscribers.get(channel, ()))


async def wait_subscribed(app: Any, user_id: str, count: int = 1) -> None:
    async def poll() -> None:
        while await subscribers(app, f"user:{user_id}") < count:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 5)


async def assert_silent(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        message = await receive(ws, wait=seconds)
        pytest.fail(f"unexpected message: {message}")


async def expect_close(ws: ClientConnection, wait: float = 5.0) -> int | None:
    """Read until the server closes; returns the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), wait)
    return closed.value.rcvd.code if closed.value.rcvd else None


def assert_revoked_event(message: dict[str, Any], op_id: str = "1") -> None:
    assert message["type"] == "next", message
    assert message["id"] == op_id
    assert "errors" not in message["payload"], message
    event = message["payload"]["data"]["viewerEvents"]
    assert event["kind"] == "SESSION_REVOKED"
    assert event["reason"] == "refresh token reused"
    assert datetime.fromisoformat(event["at"]).tzinfo is not None


# --- tests ---------------------------------------------------------------------------------


async def test_consumer_receives_session_revoked(app, server_url, http, sms):
    user = await consumer_login(http, sms)
    async with ws_connect(server_url) as ws:
        await init(ws, {"authorization": f"Bearer {user['accessToken']}"})
        await subscribe(ws)
        await wait_subscribed(app, user["id"])

        await revoke_by_reuse(http, user["refreshToken"])

        assert_revoked_event(await asyncio.wait_for(receive(ws), 5))
        # One revocation, one event.
        await assert_silent(ws, 0.5)
        await send(ws, {"id": "1", "type": "complete"})
    for _ in range(100):
        if await subscribers(app, f"user:{user['id']}") == 0:
            break
        await asyncio.sleep(0.02)
    assert await subscribers(app, f"user:{user['id']}") == 0


async def test_merchant_admin_receives_session_revoked(app, server_url, client):
    m = await make_merchant(client)
    first = await login(client, m.admin_username, PASSWORD)
    assert first["errors"] == [], first
    admin_id = await viewer_id(client, m.admin)
    async with ws_connect(server_url) as ws:
        # The token from make_merchant's own login: a different family, still valid.
        await init(ws, {"Authorization": f"Bearer {m.admin}"})
        await subscribe(ws, "events")
        await wait_subscribed(app, admin_id)

        await revoke_by_reuse(client, first["refreshToken"])

        assert_revoked_event(await asyncio.wait_for(receive(ws), 5), "events")


async def test_two_connections_of_one_user_both_receive(app, server_url, http, sms):
    user = await consumer_login(http, sms)
    async with ws_connect(server_url) as one, ws_connect(server_url) as two:
        for ws in (one, two):
            await init(ws, {"authorization": f"Bearer {user['accessToken']}"})
            await subscribe(ws)
        await wait_subscribed(app, user["id"], count=2)

        await revoke_by_reuse(http, user["refreshToken"])

        for ws in (one, two):
            assert_revoked_event(await asyncio.wait_for(receive(ws), 5))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfeCJ9.c2lnbmF0dXJl",
        "Terminal tk_doesnotexist",
        "Basic dXNlcjpwYXNz",
        12345,
        {"token": "x"},
    ],
    ids=["garbage", "forged-jwt", "unknown-terminal", "basic", "number", "object"],
)
async def test_invalid_token_is_closed_with_4403(server_url, authorization):
    async with ws_connect(server_url) as ws:
        await send(ws, {"type": "connection_init", "payload": {"authorization": authorization}})
        assert await expect_close(ws) == 4403


async def test_token_signed_with_another_key_is_closed_with_4403(server_url, http, sms):
    import jwt

    user = await consumer_login(http, sms)
    claims = jwt.decode(user["accessToken"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    async with ws_connect(server_url) as ws:
        await send(
            ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {forged}"}}
        )
        assert await expect_close(ws) == 4403


@pytest.mark.parametrize("payload", [None, {}, {"authorization": ""}, {"other": "x"}])
async def test_subscribe_without_authorization_is_unauthenticated(server_url, payload):
    async with ws_connect(server_url) as ws:
        await init(ws, payload)
        await subscribe(ws)
        message = await receive(ws)
        assert message["id"] == "1"
        if message["type"] == "error":
            errors = message["payload"]
        else:
            assert message["type"] == "next", message
            assert message["payload"].get("data") is None, message
            errors = message["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"], message
        # Nothing but the end of the operation may follow.
        with contextlib.suppress(TimeoutError):
            while True:
                message = await receive(ws, wait=0.5)
                assert message == {"id": "1", "type": "complete"}, message


async def test_subscribe_before_connection_init_is_closed_with_4401(server_url):
    async with ws_connect(server_url) as ws:
        await subscribe(ws)
        assert await expect_close(ws) == 4401


async def test_other_users_event_is_not_delivered(app, server_url, http, sms):
    alice = await consumer_login(http, sms)
    bob = await consumer_login(http, sms)
    async with ws_connect(server_url) as a, ws_connect(server_url) as b:
        await init(a, {"authorization": f"Bearer {alice['accessToken']}"})
        await init(b, {"authorization": f"Bearer {bob['accessToken']}"})
        await subscribe(a)
        await subscribe(b)
        await wait_subscribed(app, alice["id"])
        await wait_subscribed(app, bob["id"])

        await revoke_by_reuse(http, bob["refreshToken"])

        # Bob's event really went out (so Alice's silence means something) ...
        assert_revoked_event(await asyncio.wait_for(receive(b), 5))
        # ... and Alice hears nothing of it.
        await assert_silent(a, 1.0)


async def test_relay_is_idle_when_nothing_happens(app, monkeypatch):
    from app import relay as relay_module

    calls = 0
    real = relay_module.relay_batch

    async def counting(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(relay_module, "relay_batch", counting)
    await asyncio.sleep(1.5)
    # One poll a second (idle_poll_seconds=1.0), give or take a kick.
    assert calls <= 5, f"{calls} relay batches in 1.5 s with nothing to publish"


async def test_connection_params_cannot_subscribe_to_another_users_channel(
    app, server_url, http, sms
):
    """The channel comes from the token, never from the client: nothing in the payload or the
    operation can point a subscription at someone else's events."""
    alice = await consumer_login(http, sms)
    bob = await consumer_login(http, sms)
    async with ws_connect(server_url) as ws:
        await init(ws, {"authorization": f"Bearer {alice['accessToken']}", "userId": bob["id"]})
        await send(
            ws,
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": VIEWER_EVENTS, "variables": {"userId": bob["id"]}},
            },
        )
        await wait_subscribed(app, alice["id"])
        assert await subscribers(app, f"user:{bob['id']}") == 0

        await revoke_by_reuse(http, bob["refreshToken"])
        await assert_silent(ws, 1.0)
