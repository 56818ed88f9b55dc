"""Consumer-presented payment codes (付款码): online codes (single use, 60 s), offline codes from
a provisioned device (TOTP with one step of drift), guessing limits and the daily code limit."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from domain import clock
from domain.codes import settings
from domain.codes.models import PaymentCode, PaymentCodeDailyTotal
from tests.api.test_money import ledger_ok
from tests.helpers import (
    CARD,
    PAY,
    consumer_token,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
)

CODE_CREATE = """mutation($i: PaymentCodeCreateInput!) { paymentCodeCreate(input: $i) {
  code qrPayload expiresAt errors { code field message } } }"""
DEVICE_REGISTER = """mutation($i: PaymentCodeDeviceRegisterInput!) {
  paymentCodeDeviceRegister(input: $i) {
    device { id name cardId codePrefix revokedAt } secret provisioningUri digits period algorithm
    errors { code field message } } }"""
DEVICE_REVOKE = """mutation($i: PaymentCodeDeviceRevokeInput!) { paymentCodeDeviceRevoke(input: $i) {
  device { id revokedAt } errors { code } } }"""
DEVICES = """query($id: ID!) { paymentCodeDevices(cardId: $id) { id name revokedAt lastUsedAt } }"""


def codes(payload):
    return [e["code"] for e in payload["errors"]]


async def holder_with_card(client, sms, m, load=50_000, **extra):
    phone = "136" + f"{secrets.randbelow(10**8):08d}"
    token = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=load, holder_phone=phone, **extra)
    return token, card


async def new_code(client, token, card_id):
    body = await gql(client, CODE_CREATE, {"i": {"cardId": card_id}}, token=token)
    payload = body["data"]["paymentCodeCreate"]
    assert payload["errors"] == [], payload
    return payload


async def pay_code(client, m, code, amount, idem=None, *, token=None, terminal=True, **extra):
    auth = {"token": token} if token else {"terminal_key": m.terminal_key} if terminal else {}
    body = await gql(
        client,
        PAY,
        {
            "i": {
                "storeId": m.store_id,
                "amount": amount,
                "paymentCode": code,
                "idempotencyKey": idem or key(),
                **extra,
            }
        },
        **auth,
    )
    assert "errors" not in body, body
    return body["data"]["pay"]


async def balance(client, m, card_id):
    body = await gql(client, CARD, {"id": card_id}, token=m.staff)
    return body["data"]["card"]["balance"]


@pytest.fixture
def frozen(monkeypatch):
    """The domain clock stopped in the middle of a 30 s step (TOTP steps are then exact), in the
    past: tokens issued meanwhile must not look issued in the future to the JWT library."""
    at = datetime.fromtimestamp((int(time.time() - 15) // 30) * 30 + 15, UTC)
    monkeypatch.setattr(clock, "_now", lambda: at)
    return at


# --- online codes ------------------------------------------------------------------------------


async def test_a_code_pays_once_and_a_retry_replays(client, sms):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m, load=10_000)
    issued = await new_code(client, token, card["id"])
    code = issued["code"]
    assert len(code) == 18 and code.isdigit() and code.startswith(settings.prefix())
    assert code[2] in "01234"  # online; 5-9 are offline device blocks
    assert issued["qrPayload"] == code
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert timedelta(0) < expires - clock.now() <= timedelta(seconds=60)
    stored = await PaymentCode.get(card_id=card["id"])
    assert code not in (stored.code_hash, stored.id)  # only a keyed hash is kept

    k = key()
    first = await pay_code(client, m, code, 1200, k)
    assert first["errors"] == [] and first["payment"]["card"]["id"] == card["id"]
    again = await pay_code(client, m, code, 1200, k)  # same key: the same payment
    assert again["errors"] == [] and again["payment"]["id"] == first["payment"]["id"]
    second = await pay_code(client, m, code, 1200)  # a new payment: refused
    assert codes(second) == ["CODE_ALREADY_USED"]
    staff = await pay_code(client, m, code, 1200, token=m.staff)
    assert codes(staff) == ["CODE_ALREADY_USED"]
    assert await balance(client, m, card["id"]) == 8800
    await ledger_ok()


async def test_an_old_code_is_expired_and_a_made_up_one_invalid(client, sms):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    code = (await new_code(client, token, card["id"]))["code"]
    clock.advance(timedelta(seconds=61))
    try:
        assert codes(await pay_code(client, m, code, 100)) == ["CODE_EXPIRED"]
    finally:
        clock.reset()
    made_up = settings.prefix() + f"{secrets.randbelow(5 * 10**15):016d}"
    assert codes(await pay_code(client, m, made_up, 100)) == ["CODE_INVALID"]
    for foreign in ("134567890123456789", "281234567890123456", "88123", "8812345678901234567"):
        assert codes(await pay_code(client, m, foreign, 100)) == ["CODE_INVALID"], foreign
    assert await balance(client, m, card["id"]) == 50_000


async def test_only_the_holder_makes_codes_for_a_usable_card(client, sms):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    other = await consumer_token(client, sms)
    body = await gql(client, CODE_CREATE, {"i": {"cardId": card["id"]}}, token=other)
    assert codes(body["data"]["paymentCodeCreate"]) == ["NOT_FOUND"]
    body = await gql(client, CODE_CREATE, {"i": {"cardId": card["id"]}}, token=m.staff)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    frozen_body = await gql(
        client,
        "mutation($i: CardIdInput!) { cardFreeze(input: $i) { errors { code } } }",
        {"i": {"cardId": card["id"]}},
        token=token,
    )
    assert frozen_body["data"]["cardFreeze"]["errors"] == []
    body = await gql(client, CODE_CREATE, {"i": {"cardId": card["id"]}}, token=token)
    assert codes(body["data"]["paymentCodeCreate"]) == ["CARD_FROZEN"]


async def test_concurrent_pays_with_one_code_charge_once(client, sms):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m, load=10_000)
    code = (await new_code(client, token, card["id"]))["code"]
    results = await asyncio.gather(*(pay_code(client, m, code, 1000) for _ in range(8)))
    ok = [r for r in results if r["payment"]]
    assert len(ok) == 1, results
    assert {c for r in results if not r["payment"] for c in codes(r)} == {"CODE_ALREADY_USED"}
    assert await balance(client, m, card["id"]) == 9000
    await ledger_ok()


async def test_a_refused_payment_uses_up_its_code(client, sms):
    """Documented trade-off: the code is spent before the payment runs."""
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m, load=1000)
    code = (await new_code(client, token, card["id"]))["code"]
    k = key()
    assert codes(await pay_code(client, m, code, 5000, k)) == ["INSUFFICIENT_FUNDS"]
    assert codes(await pay_code(client, m, code, 500, k)) == ["CODE_ALREADY_USED"]
    fresh = (await new_code(client, token, card["id"]))["code"]
    assert (await pay_code(client, m, fresh, 500, k))["errors"] == []  # the key was left free
    assert await balance(client, m, card["id"]) == 500


async def test_a_code_needs_the_pin_above_the_products_threshold(client, sms):
    m = await make_merchant(client)
    product = await make_product(client, m, "NAMED", pinThreshold=20_000)
    token, card = await holder_with_card(client, sms, m, load=100_000, product_id=product)
    body = await gql(
        client,
        "mutation($i: CardSetPinInput!) { cardSetPin(input: $i) { errors { code } } }",
        {"i": {"cardId": card["id"], "pin": "583920"}},
        token=token,
    )
    assert body["data"]["cardSetPin"]["errors"] == []
    small = (await new_code(client, token, card["id"]))["code"]
    assert (await pay_code(client, m, small, 20_000))["errors"] == []
    code = (await new_code(client, token, card["id"]))["code"]
    assert codes(await pay_code(client, m, code, 20_001)) == ["INVALID_PIN"]
    code = (await new_code(client, token, card["id"]))["code"]
    assert (await pay_code(client, m, code, 20_001, pin="583920"))["errors"] == []
    assert await balance(client, m, card["id"]) == 100_000 - 40_001


async def test_payments_by_code_follow_the_rulebooks_daily_limit(client, sms):
    m = await make_merchant(client)  # Beijing: 1000 yuan a day by code
    token, card = await holder_with_card(client, sms, m, load=300_000)

    async def by_code(amount):
        return await pay_code(
            client, m, (await new_code(client, token, card["id"]))["code"], amount
        )

    assert (await by_code(60_000))["errors"] == []
    assert codes(await by_code(40_001)) == ["PAYMENT_CODE_DAILY_LIMIT"]
    assert codes(await by_code(100_001)) == ["PAYMENT_CODE_DAILY_LIMIT"]
    assert (await by_code(40_000))["errors"] == []
    assert codes(await by_code(1)) == ["PAYMENT_CODE_DAILY_LIMIT"]
    # The card itself is not limited: only payments by code are.
    assert (await pay(client, m, card["id"], 100_000))["errors"] == []
    total = await PaymentCodeDailyTotal.get(card_id=card["id"])
    assert total.amount == 100_000
    # A code payment the ledger refuses gives its share of the day back.
    token2, poor = await holder_with_card(client, sms, m, load=1000)
    code = (await new_code(client, token2, poor["id"]))["code"]
    assert codes(await pay_code(client, m, code, 90_000)) == ["INSUFFICIENT_FUNDS"]
    assert (await PaymentCodeDailyTotal.get(card_id=poor["id"])).amount == 0


async def test_guessing_codes_is_rate_limited_per_terminal(client, sms):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    for i in range(settings.FAILURES_PER_ACTOR):
        made_up = settings.prefix() + f"{secrets.randbelow(5 * 10**15):016d}"
        assert codes(await pay_code(client, m, made_up, 100)) == ["CODE_INVALID"], i
    made_up = settings.prefix() + f"{secrets.randbelow(5 * 10**15):016d}"
    assert codes(await pay_code(client, m, made_up, 100)) == ["RATE_LIMITED"]
    # The terminal is stopped before any lookup, even with a real code...
    code = (await new_code(client, token, card["id"]))["code"]
    assert codes(await pay_code(client, m, code, 100)) == ["RATE_LIMITED"]
    # ...while the staff at the same till are not.
    assert (await pay_code(client, m, code, 100, token=m.staff))["errors"] == []
    clock.advance(timedelta(seconds=settings.FAILURE_WINDOW_SECONDS + 1))
    try:
        fresh = (await new_code(client, token, card["id"]))["code"]
        assert (await pay_code(client, m, fresh, 100))["errors"] == []
    finally:
        clock.reset()


def test_the_prefix_never_collides_with_wechat_alipay_or_unionpay():
    for taken in ("10", "13", "15", "25", "28", "30", "62"):
        with pytest.raises(ValueError):
            settings.check_prefix(taken)
    for bad in ("8", "888", "a8", "٨٨"):
        with pytest.raises(ValueError):
            settings.check_prefix(bad)
    assert settings.check_prefix("88") == "88"
    assert settings.check_prefix(settings.DEFAULT_PREFIX) not in settings.RESERVED


# --- offline codes -----------------------------------------------------------------------------


async def register(client, token, card_id, name="iPhone"):
    body = await gql(
        client, DEVICE_REGISTER, {"i": {"cardId": card_id, "deviceName": name}}, token=token
    )
    return body["data"]["paymentCodeDeviceRegister"]


def offline(device, step_offset, at, otp=None):
    totp = pyotp.TOTP(device["secret"], digits=device["digits"], interval=device["period"])
    return device["device"]["codePrefix"] + (otp or totp.at(at, counter_offset=step_offset))


async def test_offline_codes_pay_with_one_step_of_drift_and_never_twice(client, sms, frozen):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m, load=10_000)
    device = await register(client, token, card["id"])
    assert device["errors"] == [], device
    assert (device["digits"], device["period"], device["algorithm"]) == (8, 30, "SHA1")
    assert device["provisioningUri"].startswith("otpauth://totp/")
    prefix = device["device"]["codePrefix"]
    assert len(prefix) == 10 and prefix[:2] == settings.prefix() and prefix[2] in "56789"

    behind = offline(device, -1, frozen)  # the phone's clock 30 s slow
    k = key()
    first = await pay_code(client, m, behind, 100, k)
    assert first["errors"] == [] and first["payment"]["card"]["id"] == card["id"]
    assert (await pay_code(client, m, behind, 100, k))["payment"]["id"] == first["payment"]["id"]
    assert codes(await pay_code(client, m, behind, 100)) == ["CODE_ALREADY_USED"]
    assert (await pay_code(client, m, offline(device, 0, frozen), 100))["errors"] == []
    ahead = offline(device, 1, frozen)  # 30 s fast
    assert (await pay_code(client, m, ahead, 100))["errors"] == []
    assert codes(await pay_code(client, m, ahead, 100)) == ["CODE_ALREADY_USED"]
    # An older step than the last that paid is dead, even if it never paid.
    assert codes(await pay_code(client, m, offline(device, 0, frozen), 100)) == [
        "CODE_ALREADY_USED"
    ]
    # Two steps off: a clock problem, reported as expired.
    assert codes(await pay_code(client, m, offline(device, 2, frozen), 100)) == ["CODE_EXPIRED"]
    assert codes(await pay_code(client, m, offline(device, -3, frozen), 100)) == ["CODE_EXPIRED"]
    assert codes(await pay_code(client, m, offline(device, 0, frozen, "00000000"), 100)) in (
        ["CODE_INVALID"],
        ["CODE_ALREADY_USED"],  # one chance in 10^8 that 00000000 is this step's code
    )
    assert await balance(client, m, card["id"]) == 9700
    await ledger_ok()


async def test_concurrent_pays_with_one_offline_code_charge_once(client, sms, frozen):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m, load=10_000)
    device = await register(client, token, card["id"])
    code = offline(device, 0, frozen)
    results = await asyncio.gather(*(pay_code(client, m, code, 1000) for _ in range(6)))
    assert len([r for r in results if r["payment"]]) == 1, results
    assert {c for r in results if not r["payment"] for c in codes(r)} == {"CODE_ALREADY_USED"}
    assert await balance(client, m, card["id"]) == 9000


async def test_wrong_offline_codes_lock_the_card_not_only_the_terminal(client, sms, frozen):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    device = await register(client, token, card["id"])
    right = offline(device, 0, frozen)
    wrong = [
        f"{(int(right[10:]) + i) % 10**8:08d}" for i in range(1, settings.FAILURES_PER_CARD + 1)
    ]
    for otp in wrong:
        assert codes(await pay_code(client, m, offline(device, 0, frozen, otp), 100)) == [
            "CODE_INVALID"
        ]
    # The card's offline codes are now refused everywhere for a while, the right one too.
    assert codes(await pay_code(client, m, right, 100)) == ["RATE_LIMITED"]
    assert codes(await pay_code(client, m, right, 100, token=m.staff)) == ["RATE_LIMITED"]
    # Online codes of the card are unaffected (another terminal actor: the staff).
    online = (await new_code(client, token, card["id"]))["code"]
    assert (await pay_code(client, m, online, 100, token=m.staff))["errors"] == []


async def test_devices_are_listed_revoked_and_limited(client, sms, frozen):
    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    device = await register(client, token, card["id"], "Old phone")
    other = await consumer_token(client, sms)
    assert codes(await register(client, other, card["id"])) == ["NOT_FOUND"]
    body = await gql(
        client, DEVICE_REVOKE, {"i": {"deviceId": device["device"]["id"]}}, token=other
    )
    assert codes(body["data"]["paymentCodeDeviceRevoke"]) == ["NOT_FOUND"]

    body = await gql(
        client, DEVICE_REVOKE, {"i": {"deviceId": device["device"]["id"]}}, token=token
    )
    revoked = body["data"]["paymentCodeDeviceRevoke"]
    assert revoked["errors"] == [] and revoked["device"]["revokedAt"]
    body = await gql(
        client, DEVICE_REVOKE, {"i": {"deviceId": device["device"]["id"]}}, token=token
    )
    assert (
        body["data"]["paymentCodeDeviceRevoke"]["device"]["revokedAt"]
        == revoked["device"]["revokedAt"]
    )
    assert codes(await pay_code(client, m, offline(device, 0, frozen), 100)) == ["CODE_INVALID"]

    listed = (await gql(client, DEVICES, {"id": card["id"]}, token=token))["data"]
    assert [d["name"] for d in listed["paymentCodeDevices"]] == ["Old phone"]
    staff_view = (await gql(client, DEVICES, {"id": card["id"]}, token=m.staff))["data"]
    assert len(staff_view["paymentCodeDevices"]) == 1
    assert (await gql(client, DEVICES, {"id": card["id"]}, token=other))["data"] == {
        "paymentCodeDevices": []
    }
    for i in range(settings.DEVICES_PER_CARD):
        assert (await register(client, token, card["id"], f"phone {i}"))["errors"] == []
    assert codes(await register(client, token, card["id"], "one more")) == ["DEVICE_LIMIT_REACHED"]


async def test_holds_and_session_redemptions_by_code_replay_on_retry(client, sms):
    from tests.api.test_holds import HOLD
    from tests.api.test_session_cards import REDEEM

    m = await make_merchant(client)
    token, card = await holder_with_card(client, sms, m)
    code = (await new_code(client, token, card["id"]))["code"]
    k = key()
    held = []
    for _ in range(2):
        body = await gql(
            client,
            HOLD,
            {
                "i": {
                    "storeId": m.store_id,
                    "amount": 1000,
                    "paymentCode": code,
                    "idempotencyKey": k,
                }
            },
            terminal_key=m.terminal_key,
        )
        assert body["data"]["cardHold"]["errors"] == [], body
        held.append(body["data"]["cardHold"]["hold"]["id"])
    assert held[0] == held[1]
    other = await gql(
        client,
        HOLD,
        {
            "i": {
                "storeId": m.store_id,
                "amount": 1000,
                "paymentCode": code,
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert codes(other["data"]["cardHold"]) == ["CODE_ALREADY_USED"]
    assert await balance(client, m, card["id"]) == 50_000 - 1000

    phone = "136" + f"{secrets.randbelow(10**8):08d}"
    holder = await consumer_token(client, sms, phone)
    product = await make_product(client, m, "SESSION", sessionCount=10, sessionPrice=10000)
    sessions = await make_card(
        client, m, product_id=product, kind="SESSION", load=10000, holder_phone=phone
    )
    code = (await new_code(client, holder, sessions["id"]))["code"]
    k = key()
    paid = []
    for _ in range(2):
        body = await gql(
            client,
            REDEEM,
            {"i": {"storeId": m.store_id, "paymentCode": code, "idempotencyKey": k}},
            terminal_key=m.terminal_key,
        )
        assert body["data"]["sessionRedeem"]["errors"] == [], body
        paid.append(body["data"]["sessionRedeem"]["payment"])
    assert paid[0]["id"] == paid[1]["id"] and paid[1]["card"]["sessions"] == 9


async def test_holds_by_code_count_toward_the_daily_limit(client, sms):
    from tests.api.test_holds import HOLD

    m = await make_merchant(client)  # Beijing: 1000 yuan a day by code
    token, card = await holder_with_card(client, sms, m, load=300_000)

    async def hold_by_code(amount):
        code = (await new_code(client, token, card["id"]))["code"]
        body = await gql(
            client,
            HOLD,
            {
                "i": {
                    "storeId": m.store_id,
                    "amount": amount,
                    "paymentCode": code,
                    "idempotencyKey": key(),
                }
            },
            terminal_key=m.terminal_key,
        )
        return body["data"]["cardHold"]

    assert (await hold_by_code(70_000))["errors"] == []
    assert codes(await hold_by_code(30_001)) == ["PAYMENT_CODE_DAILY_LIMIT"]
    assert codes(
        await pay_code(client, m, (await new_code(client, token, card["id"]))["code"], 30_001)
    ) == ["PAYMENT_CODE_DAILY_LIMIT"]
    assert (await PaymentCodeDailyTotal.get(card_id=card["id"])).amount == 70_000
    # A hold the ledger refuses gives its share of the day back.
    token2, poor = await holder_with_card(client, sms, m, load=1000)
    code = (await new_code(client, token2, poor["id"]))["code"]
    refused = await gql(
        client,
        HOLD,
        {
            "i": {
                "storeId": m.store_id,
                "amount": 5000,
                "paymentCode": code,
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert codes(refused["data"]["cardHold"]) == ["INSUFFICIENT_FUNDS"]
    assert (await PaymentCodeDailyTotal.get(card_id=poor["id"])).amount == 0


async def test_session_redemptions_by_code_count_their_price_toward_the_daily_limit(client, sms):
    from tests.api.test_session_cards import REDEEM

    m = await make_merchant(client)  # Beijing: 1000 yuan a day by code
    phone = "136" + f"{secrets.randbelow(10**8):08d}"
    holder = await consumer_token(client, sms, phone)
    product = await make_product(client, m, "SESSION", sessionCount=10, sessionPrice=90_000)
    card = await make_card(
        client, m, product_id=product, kind="SESSION", load=90_000, holder_phone=phone
    )

    async def redeem_by_code(n):
        code = (await new_code(client, holder, card["id"]))["code"]
        body = await gql(
            client,
            REDEEM,
            {
                "i": {
                    "storeId": m.store_id,
                    "paymentCode": code,
                    "sessions": n,
                    "idempotencyKey": key(),
                }
            },
            terminal_key=m.terminal_key,
        )
        return body["data"]["sessionRedeem"]

    assert (await redeem_by_code(10))["errors"] == []  # 900 yuan of sessions
    assert (await PaymentCodeDailyTotal.get(card_id=card["id"])).amount == 90_000
    assert codes(await redeem_by_code(1)) == ["INSUFFICIENT_SESSIONS"]
    assert (await PaymentCodeDailyTotal.get(card_id=card["id"])).amount == 90_000
