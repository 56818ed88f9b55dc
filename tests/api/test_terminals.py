"""Terminal lifecycle: heartbeat and last-seen for the admin, key rotation and revocation (the
old key stops at once), and a terminal charging only at its own store."""

from __future__ import annotations

from tests.api.terminal_helpers import (
    CHARGE_CREATE,
    HEARTBEAT,
    REVOKE,
    ROTATE,
    TERMINALS,
    create_charge,
    new_uid,
    tap,
    uid_card,
)
from tests.helpers import PAY, gql, key, make_merchant, top_code


async def test_heartbeat_is_seen_by_the_merchant_admin_only(client):
    m = await make_merchant(client)
    other = await make_merchant(client, m.operator)
    body = await gql(
        client,
        HEARTBEAT,
        {"i": {"appVersion": "pos/2.1", "readerStatus": "ACR122U: ready; queued taps: 0"}},
        terminal_key=m.terminal_key,
    )
    beat = body["data"]["terminalHeartbeat"]
    assert beat["errors"] == [] and beat["serverTime"], body
    assert beat["terminal"]["appVersion"] == "pos/2.1"
    listed = await gql(client, TERMINALS, {"id": m.merchant_id}, token=m.admin)
    (terminal,) = [t for t in listed["data"]["terminals"] if t["id"] == m.terminal_id]
    assert terminal["heartbeatAt"] and terminal["lastSeenAt"]
    assert terminal["readerStatus"] == "ACR122U: ready; queued taps: 0"
    by_store = await gql(
        client, TERMINALS, {"id": m.merchant_id, "store": m.other_store_id}, token=m.admin
    )
    assert by_store["data"]["terminals"] == []
    # Another merchant's admin and the staff do not see them.
    refused = await gql(client, TERMINALS, {"id": m.merchant_id}, token=other.admin)
    assert top_code(refused) == "FORBIDDEN"
    refused = await gql(client, TERMINALS, {"id": m.merchant_id}, token=m.staff)
    assert top_code(refused) == "FORBIDDEN"
    too_long = await gql(
        client, HEARTBEAT, {"i": {"readerStatus": "x" * 201}}, terminal_key=m.terminal_key
    )
    assert too_long["data"]["terminalHeartbeat"]["errors"][0]["code"] == "INVALID_INPUT"


async def test_rotated_key_stops_at_once_and_the_new_one_works(client):
    m = await make_merchant(client)
    # Warm the authentication cache with the old key.
    await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)
    body = await gql(client, ROTATE, {"i": {"terminalId": m.terminal_id}}, token=m.admin)
    rotated = body["data"]["terminalKeyRotate"]
    assert rotated["errors"] == [] and rotated["terminal"]["keyRotatedAt"], body
    new_key = rotated["terminalKey"]
    assert new_key != m.terminal_key
    old = await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)
    assert top_code(old) == "UNAUTHENTICATED"
    ok = await gql(client, HEARTBEAT, {"i": {}}, terminal_key=new_key)
    assert ok["data"]["terminalHeartbeat"]["errors"] == []
    # The terminal rotates its own key; another merchant's admin cannot touch it.
    body = await gql(client, ROTATE, {"i": {"terminalId": m.terminal_id}}, terminal_key=new_key)
    newest = body["data"]["terminalKeyRotate"]["terminalKey"]
    assert top_code(await gql(client, HEARTBEAT, {"i": {}}, terminal_key=new_key)) == (
        "UNAUTHENTICATED"
    )
    other = await make_merchant(client, m.operator)
    body = await gql(client, ROTATE, {"i": {"terminalId": m.terminal_id}}, token=other.admin)
    assert body["data"]["terminalKeyRotate"]["errors"][0]["code"] == "NOT_FOUND"
    # A terminal cannot rotate another terminal's key.
    body = await gql(client, ROTATE, {"i": {"terminalId": other.terminal_id}}, terminal_key=newest)
    assert body["data"]["terminalKeyRotate"]["errors"][0]["code"] == "NOT_FOUND"


async def test_revoked_key_stops_at_once(client):
    m = await make_merchant(client)
    await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)  # cached
    body = await gql(client, REVOKE, {"i": {"terminalId": m.terminal_id}}, token=m.admin)
    assert body["data"]["terminalRevoke"]["terminal"]["revoked"] is True, body
    assert top_code(await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)) == (
        "UNAUTHENTICATED"
    )
    body = await gql(client, ROTATE, {"i": {"terminalId": m.terminal_id}}, token=m.admin)
    assert body["data"]["terminalKeyRotate"]["errors"][0]["code"] == "TERMINAL_REVOKED"
    again = await gql(client, REVOKE, {"i": {"terminalId": m.terminal_id}}, token=m.operator)
    assert again["data"]["terminalRevoke"]["errors"] == []


async def test_revocation_in_another_worker_stops_charges_and_taps_at_once(client):
    """Another worker revokes the key: this worker's cache still has it for a few seconds
    (documented), but terminal charges and reader taps read the terminal fresh."""
    from domain import clock
    from domain.merchants.models import Terminal

    m = await make_merchant(client)
    _card, uid = await uid_card(client, m, load=1000)
    await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)  # cached here
    await Terminal.filter(id=m.terminal_id).update(revoked_at=clock.now())  # "elsewhere"
    body = await gql(
        client,
        CHARGE_CREATE,
        {"i": {"amount": 100, "idempotencyKey": key()}},
        terminal_key=m.terminal_key,
    )
    assert top_code(body) == "UNAUTHENTICATED"
    body = await gql(
        client,
        "mutation($i: ReaderTapInput!) { readerTap(input: $i) { errors { code } } }",
        {"i": {"uid": uid, "idempotencyKey": key()}},
        terminal_key=m.terminal_key,
    )
    assert top_code(body) == "UNAUTHENTICATED"


async def test_a_terminal_charges_cards_only_at_its_own_store(client):
    m = await make_merchant(client)
    other = await make_merchant(client, m.operator)
    _card, uid = await uid_card(client, m, load=3000)
    body = await gql(
        client,
        PAY,
        {
            "i": {
                "storeId": m.other_store_id,
                "amount": 100,
                "cardUid": uid,
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert top_code(body) == "FORBIDDEN"
    # Another merchant's terminal cannot charge this merchant's card through a charge either:
    # its charge is at its own store, and the card is not its merchant's.
    charge = await create_charge(client, other.terminal_key, 100)
    refused = await tap(client, other.terminal_key, uid)
    assert refused["errors"][0]["code"] == "CARD_NOT_ACCEPTED", refused
    assert charge["storeId"] == other.store_id
    unknown = await tap(client, other.terminal_key, new_uid())
    assert unknown["errors"][0]["code"] == "NOT_FOUND"
