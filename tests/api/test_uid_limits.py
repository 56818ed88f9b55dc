"""UID cards are weak: velocity and the amount allowed without PIN, the PIN to go past them, and
DESFire products whose cards are accepted only with a verified AES authentication."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from devices import card as cardio
from domain.terminals import desfire, keystore
from tests.api.terminal_helpers import (
    CONFIRM_PIN,
    DESFIRE_AUTH,
    HEARTBEAT,
    balance,
    charge_state,
    create_charge,
    set_policy,
    tap,
    uid_card,
)
from tests.devices.cards import DesfireEV2, Direct
from tests.helpers import PAY, gql, key, make_merchant, make_product

PIN = "583920"


async def fresh_minute() -> None:
    """Rate windows are calendar minutes: do not start a count just before one ends."""
    if time.time() % 60 > 45:
        await asyncio.sleep(61 - time.time() % 60)


async def set_pin(client, m, card_id: str) -> None:
    body = await gql(
        client,
        "mutation($i: CardSetPinInput!) { cardSetPin(input: $i) { errors { code } } }",
        {"i": {"cardId": card_id, "pin": PIN}},
        token=m.staff,
    )
    assert body["data"]["cardSetPin"]["errors"] == [], body


async def pay_uid(client, m, uid: str, amount: int, idem: str | None = None, **extra) -> dict:
    body = await gql(
        client,
        PAY,
        {
            "i": {
                "storeId": m.store_id,
                "amount": amount,
                "cardUid": uid,
                "idempotencyKey": idem or key(),
                **extra,
            }
        },
        token=m.staff,
    )
    assert "errors" not in body, body
    return body["data"]["pay"]


async def confirm(client, m, charge_id: str, pin: str) -> dict:
    body = await gql(
        client,
        CONFIRM_PIN,
        {"i": {"chargeId": charge_id, "pin": pin}},
        terminal_key=m.terminal_key,
    )
    return body["data"]["terminalChargeConfirmPin"]


async def test_taps_over_the_velocity_need_the_pin_typed_on_the_tablet(client):
    from domain.terminals import uid_guard

    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(client, m, product, technology="UID", tapsPerMinute=2)
    card, uid = await uid_card(client, m, load=5000, product_id=product)
    await set_pin(client, m, card["id"])
    await fresh_minute()
    for _ in range(2):
        await create_charge(client, m.terminal_key, 100)
        assert (await tap(client, m.terminal_key, uid))["errors"] == []
    charge = await create_charge(client, m.terminal_key, 100)
    refused = await tap(client, m.terminal_key, uid)
    assert refused["errors"][0]["code"] == "UID_PIN_REQUIRED"
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "PENDING" and state["lastError"]["code"] == "UID_PIN_REQUIRED"
    wrong = await confirm(client, m, charge["id"], "135792")
    assert wrong["errors"][0]["code"] == "INVALID_PIN"
    ok = await confirm(client, m, charge["id"], PIN)
    assert ok["errors"] == [] and ok["terminalCharge"]["status"] == "SUCCEEDED"
    assert await balance(client, m, card["id"]) == 4700
    assert await uid_guard.tap_count(card["id"]) == 3
    # Staff with the PIN at hand pay by UID past the velocity too.
    assert (await pay_uid(client, m, uid, 50))["errors"][0]["code"] == "UID_PIN_REQUIRED"
    assert (await pay_uid(client, m, uid, 50, pin=PIN))["errors"] == []


async def test_amount_without_pin_per_day(client):
    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(
        client, m, product, technology="UID", tapsPerMinute=100, dailyAmountWithoutPin=1000
    )
    card, uid = await uid_card(client, m, load=5000, product_id=product)
    await set_pin(client, m, card["id"])
    idem = key()
    assert (await pay_uid(client, m, uid, 400, idem))["errors"] == []
    # A retry is a replay, not a second 400 against the allowance.
    assert (await pay_uid(client, m, uid, 400, idem))["errors"] == []
    assert (await pay_uid(client, m, uid, 700))["errors"][0]["code"] == "UID_PIN_REQUIRED"
    assert (await pay_uid(client, m, uid, 700, pin=PIN))["errors"] == []  # not counted
    assert (await pay_uid(client, m, uid, 600))["errors"] == []  # 400 + 600
    assert (await pay_uid(client, m, uid, 1))["errors"][0]["code"] == "UID_PIN_REQUIRED"
    assert await balance(client, m, card["id"]) == 5000 - 1700


async def test_a_failed_payment_gives_its_amount_back_to_the_allowance(client):
    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(
        client, m, product, technology="UID", tapsPerMinute=100, dailyAmountWithoutPin=1000
    )
    _card, uid = await uid_card(client, m, load=500, product_id=product)
    assert (await pay_uid(client, m, uid, 600))["errors"][0]["code"] == "INSUFFICIENT_FUNDS"
    assert (await pay_uid(client, m, uid, 500))["errors"] == []


async def test_default_policy_and_who_sets_it(client):
    m = await make_merchant(client)
    other = await make_merchant(client, m.operator)
    product = await make_product(client, m)
    body = await gql(
        client,
        "query($id: ID!) { cardProductTapPolicy(productId: $id) { technology tapsPerMinute dailyAmountWithoutPin } }",
        {"id": product},
        terminal_key=m.terminal_key,
    )
    assert body["data"]["cardProductTapPolicy"] == {
        "technology": "UID",
        "tapsPerMinute": 6,
        "dailyAmountWithoutPin": 50_000,
    }
    body = await gql(
        client,
        "mutation($i: CardProductTapPolicySetInput!) { cardProductTapPolicySet(input: $i) { errors { code } } }",
        {"i": {"productId": product, "technology": "DESFIRE_EV3"}},
        token=other.admin,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(
        client,
        "mutation($i: CardProductTapPolicySetInput!) { cardProductTapPolicySet(input: $i) { errors { code field } } }",
        {"i": {"productId": product, "technology": "UID", "tapsPerMinute": 0}},
        token=m.admin,
    )
    assert body["data"]["cardProductTapPolicySet"]["errors"][0]["field"] == "tapsPerMinute"


# --- DESFire -----------------------------------------------------------------------------------


@pytest.fixture
def desfire_keys():
    """A master key generated for this test (keys never live in the repository)."""
    master = os.urandom(16)
    app = keystore.DesfireApplication(aid=0xF0594B, key_no=1, system_identifier=b"Yikatong")
    keystore.configure(keystore.MasterKeyStore(master, app))
    yield master, app
    keystore.reset()


def personalised(master: bytes, app: keystore.DesfireApplication, uid: str) -> DesfireEV2:
    raw = bytes.fromhex(uid)
    card_key = desfire.diversify_aes128(
        master, desfire.diversification_input(raw, app.aid_wire, app.system_identifier)
    )
    return DesfireEV2(raw, app.aid_wire, app.key_no, card_key)


async def relay(client, terminal_key: str, card: DesfireEV2, app) -> dict[str, str]:
    """What the bridge does: the card's challenge to the server, the answer back to the card."""
    connection = Direct(card)
    challenge = cardio.desfire_challenge(connection, app.aid_wire, app.key_no)
    assert challenge is not None
    body = await gql(
        client,
        DESFIRE_AUTH,
        {"i": {"uid": card.uid_hex, "cardChallenge": challenge.hex()}},
        terminal_key=terminal_key,
    )
    auth = body["data"]["readerDesfireAuthenticate"]
    assert auth["errors"] == [], body
    final = cardio.desfire_finish(connection, bytes.fromhex(auth["readerResponse"]))
    return {"authId": auth["authId"], "cardResponse": final.hex()}


async def test_desfire_product_accepts_only_a_verified_card(client, desfire_keys):
    from domain.terminals.models import CardTapStats, ReaderTap

    master, app = desfire_keys
    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(client, m, product, technology="DESFIRE_EV2", tapsPerMinute=1)
    card, uid = await uid_card(client, m, load=5000, product_id=product)
    genuine = personalised(master, app, uid)
    beat = await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)
    assert beat["data"]["terminalHeartbeat"]["desfire"] == {"aid": "F0594B", "keyNo": 1}

    charge = await create_charge(client, m.terminal_key, 300)
    # The UID alone (a clone, or a bare pay by cardUid) is refused, and no PIN cures it.
    bare = await tap(client, m.terminal_key, uid)
    assert bare["errors"][0]["code"] == "DESFIRE_PROOF_REQUIRED"
    assert (await confirm(client, m, charge["id"], PIN))["errors"][0]["code"] == "INVALID_INPUT"
    assert (await pay_uid(client, m, uid, 100))["errors"][0]["code"] == "DESFIRE_PROOF_REQUIRED"
    held = await gql(
        client,
        "mutation($i: CardHoldInput!) { cardHold(input: $i) { errors { code } } }",
        {"i": {"storeId": m.store_id, "amount": 100, "cardUid": uid, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert held["data"]["cardHold"]["errors"][0]["code"] == "DESFIRE_PROOF_REQUIRED"

    proof = await relay(client, m.terminal_key, genuine, app)
    tap_key = key()
    paid = await tap(client, m.terminal_key, uid, tap_key, desfireProof=proof)
    assert paid["errors"] == [] and paid["terminalCharge"]["id"] == charge["id"], paid
    assert (await ReaderTap.get(idempotency_key=tap_key)).authentic is True
    # The same report again is answered with the same payment (the proof is this tap's).
    again = await tap(client, m.terminal_key, uid, tap_key, desfireProof=proof)
    assert again["payment"]["id"] == paid["payment"]["id"]
    # A proof is spent by its tap: replayed on another tap it is refused.
    await create_charge(client, m.terminal_key, 300)
    replayed = await tap(client, m.terminal_key, uid, desfireProof=proof)
    assert replayed["errors"][0]["code"] == "DESFIRE_PROOF_INVALID"
    forged = {"authId": (await relay(client, m.terminal_key, genuine, app))["authId"]}
    forged["cardResponse"] = os.urandom(32).hex()
    assert (await tap(client, m.terminal_key, uid, desfireProof=forged))["errors"][0][
        "code"
    ] == "DESFIRE_PROOF_INVALID"
    # Authentic taps are not held to the UID velocity (1 a minute here).
    second = await tap(
        client, m.terminal_key, uid, desfireProof=await relay(client, m.terminal_key, genuine, app)
    )
    assert second["errors"] == [], second
    assert await balance(client, m, card["id"]) == 4400
    stats = await CardTapStats.get(card_id=card["id"])
    assert stats.authentic_taps == 2


async def test_a_proof_is_bound_to_its_card_and_terminal(client, desfire_keys):
    master, app = desfire_keys
    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(client, m, product, technology="DESFIRE_EV3")
    _card_a, uid_a = await uid_card(client, m, load=5000, product_id=product)
    card_b, uid_b = await uid_card(client, m, load=5000, product_id=product)
    await create_charge(client, m.terminal_key, 300)
    proof_a = await relay(client, m.terminal_key, personalised(master, app, uid_a), app)
    stolen = await tap(client, m.terminal_key, uid_b, desfireProof=proof_a)
    assert stolen["errors"][0]["code"] == "DESFIRE_PROOF_INVALID"
    other = await make_merchant(client, m.operator)
    await create_charge(client, other.terminal_key, 300)
    elsewhere = await tap(client, other.terminal_key, uid_a, desfireProof=proof_a)
    assert elsewhere["errors"][0]["code"] == "DESFIRE_PROOF_INVALID"
    assert await balance(client, m, card_b["id"]) == 5000


async def test_without_a_key_store_desfire_is_off(client):
    keystore.configure(None)
    try:
        m = await make_merchant(client)
        beat = await gql(client, HEARTBEAT, {"i": {}}, terminal_key=m.terminal_key)
        assert beat["data"]["terminalHeartbeat"]["desfire"] is None
        body = await gql(
            client,
            DESFIRE_AUTH,
            {"i": {"uid": "04A1B2C3D4E5F6", "cardChallenge": "00" * 16}},
            terminal_key=m.terminal_key,
        )
        errors = body["data"]["readerDesfireAuthenticate"]["errors"]
        assert errors[0]["code"] == "DESFIRE_NOT_CONFIGURED"
    finally:
        keystore.reset()


async def test_holds_by_uid_follow_the_same_no_pin_allowance(client):
    from tests.api.test_holds import HOLD

    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(
        client, m, product, technology="UID", tapsPerMinute=100, dailyAmountWithoutPin=1000
    )
    card, uid = await uid_card(client, m, load=5000, product_id=product)
    await set_pin(client, m, card["id"])

    async def hold_uid(amount: int, **extra) -> dict:
        body = await gql(
            client,
            HOLD,
            {
                "i": {
                    "storeId": m.store_id,
                    "cardUid": uid,
                    "amount": amount,
                    "idempotencyKey": key(),
                    **extra,
                }
            },
            token=m.staff,
        )
        return body["data"]["cardHold"]

    assert (await hold_uid(800))["errors"] == []
    assert (await hold_uid(300))["errors"][0]["code"] == "UID_PIN_REQUIRED"
    assert (await pay_uid(client, m, uid, 300))["errors"][0]["code"] == "UID_PIN_REQUIRED"
    assert (await hold_uid(300, pin=PIN))["errors"] == []
