"""Online top-ups end to end: a PENDING top-up, the provider's signed notification POSTed to the
real callback route, the card credited exactly once. Notifications are built and signed as
WeChat Pay (API v3) and Alipay build them, with keys the test harness generated."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from domain import clock
from tests.api.test_money import ledger_ok
from tests.domain.test_channels import alipay_sign, encrypted_body, notify_params, transaction
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
)

START = """mutation($i: TopUpInput!) { topUp(input: $i) {
  topUp { id status amount bonus channel expiresAt card { id balance } }
  errors { code field message } } }"""
STATUS = """query($id: ID!) { topUpById(id: $id) {
  id status amount bonus channel expiresAt failureReason } }"""


async def start_top_up(
    client: Any, token: str, card_id: str, amount: int, channel: str = "WECHAT_PAY"
) -> dict[str, Any]:
    body = await gql(
        client,
        START,
        {"i": {"cardId": card_id, "amount": amount, "channel": channel, "idempotencyKey": key()}},
        token=token,
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["topUp"]
    return payload


def wechat_notification(keys: Any, out_trade_no: str, total: int, **tx: Any) -> tuple[bytes, dict]:
    body = encrypted_body(
        transaction(
            mchid=keys.wechatpay_mchid,
            appid=keys.wechatpay_appid,
            out_trade_no=out_trade_no,
            transaction_id="42000022" + out_trade_no[-20:],
            amount={"total": total, "payer_total": total, "currency": "CNY"},
            **tx,
        ),
        apiv3_key=keys.wechatpay_apiv3_key,
    )
    timestamp = str(int(clock.now().timestamp()))
    nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    signature = keys.wechatpay_private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": keys.wechatpay_key_id,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return body, headers


async def post_wechat(client: Any, body: bytes, headers: dict) -> Any:
    return await client.post("/callbacks/wechatpay", content=body, headers=headers)


def alipay_body(keys: Any, out_trade_no: str, total_yuan: str, **params: Any) -> bytes:
    form = notify_params(
        app_id=keys.alipay_app_id,
        auth_app_id=keys.alipay_app_id,
        out_trade_no=out_trade_no,
        total_amount=total_yuan,
        **params,
    )
    return urlencode(alipay_sign(keys.alipay_private_key, form)).encode()


async def post_alipay(client: Any, body: bytes) -> Any:
    return await client.post(
        "/callbacks/alipay",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


async def setup(client: Any, sms: Any, load: int = 10000, **product: Any) -> dict[str, Any]:
    m = await make_merchant(client)
    phone = "158" + key()[-8:].translate(str.maketrans("abcdef", "123456"))
    consumer = await consumer_token(client, sms, phone)
    product_id = await make_product(client, m, "NAMED", **product)
    card = await make_card(client, m, product_id=product_id, load=load, holder_phone=phone)
    return {"m": m, "consumer": consumer, "card": card}


async def balance(client: Any, m: MerchantSetup, card_id: str) -> int:
    return int((await gql(client, CARD, {"id": card_id}, token=m.staff))["data"]["card"]["balance"])


async def status(client: Any, token: str, top_up_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql(client, STATUS, {"id": top_up_id}, token=token))["data"][
        "topUpById"
    ]
    return found


async def test_wechat_pay_top_up_is_credited_once_by_its_notification(client, sms, provider_keys):
    keys = provider_keys[0]
    s = await setup(client, sms, topUpBonusRules=[{"minAmount": 50000, "bonus": 5000}])
    m, card = s["m"], s["card"]
    started = await start_top_up(client, s["consumer"], card["id"], 50000)
    assert started["errors"] == [], started
    top = started["topUp"]
    assert (top["status"], top["channel"], len(top["id"]) <= 32) == ("PENDING", "WECHAT_PAY", True)
    assert await balance(client, m, card["id"]) == 10000

    body, headers = wechat_notification(keys, top["id"], 50000)
    answers = await asyncio.gather(*(post_wechat(client, body, headers) for _ in range(20)))
    assert {a.status_code for a in answers} == {204}
    assert await balance(client, m, card["id"]) == 10000 + 50000 + 5000
    done = await status(client, s["consumer"], top["id"])
    assert (done["status"], done["bonus"]) == ("SUCCEEDED", 5000)

    later = await post_wechat(client, *wechat_notification(keys, top["id"], 50000))
    assert later.status_code == 204
    assert await balance(client, m, card["id"]) == 65000
    statement = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    lines = statement["data"]["card"]["transactions"]["edges"]
    assert [e["node"]["type"] for e in lines].count("TOPUP") == 1
    await ledger_ok()


async def test_forged_mismatched_and_unknown_wechat_notifications_change_nothing(
    client, sms, provider_keys
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    top = (await start_top_up(client, s["consumer"], card["id"], 3000))["topUp"]

    body, headers = wechat_notification(keys, top["id"], 3000)
    forged = await post_wechat(client, body.replace(b"}", b" }", 1), headers)
    assert forged.status_code == 401 and forged.json()["code"] == "FAIL"
    probe = await post_wechat(
        client, body, {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + "A" * 40}
    )
    assert probe.status_code == 401
    stale = dict(headers, **{"Wechatpay-Timestamp": str(int(clock.now().timestamp()) - 301)})
    assert (await post_wechat(client, body, stale)).status_code == 401

    short = await post_wechat(client, *wechat_notification(keys, top["id"], 2999))
    assert short.status_code == 400 and short.json()["code"] == "FAIL"
    unknown = await post_wechat(client, *wechat_notification(keys, "top_" + "0" * 26, 3000))
    assert unknown.status_code == 400
    assert await balance(client, m, card["id"]) == 10000
    assert (await status(client, s["consumer"], top["id"]))["status"] == "PENDING"

    closed = await post_wechat(
        client, *wechat_notification(keys, top["id"], 3000, trade_state="CLOSED")
    )
    assert closed.status_code == 204
    assert (await status(client, s["consumer"], top["id"]))["status"] == "FAILED"
    assert await balance(client, m, card["id"]) == 10000


async def test_alipay_top_up_credits_on_success_and_ignores_the_finished_copy(
    client, sms, provider_keys
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    top = (await start_top_up(client, s["consumer"], card["id"], 1230, "ALIPAY"))["topUp"]

    waiting = await post_alipay(
        client, alipay_body(keys, top["id"], "12.30", trade_status="WAIT_BUYER_PAY")
    )
    assert waiting.text == "success"
    assert await balance(client, m, card["id"]) == 10000

    tampered = alipay_body(keys, top["id"], "12.30").replace(b"12.30", b"99.30")
    refused = await post_alipay(client, tampered)
    assert refused.text != "success"
    mismatch = await post_alipay(client, alipay_body(keys, top["id"], "12.31"))
    assert mismatch.text != "success"
    assert await balance(client, m, card["id"]) == 10000

    paid = await post_alipay(client, alipay_body(keys, top["id"], "12.30"))
    assert (paid.status_code, paid.text) == (200, "success")
    finished = await post_alipay(
        client, alipay_body(keys, top["id"], "12.30", trade_status="TRADE_FINISHED")
    )
    assert finished.text == "success"
    assert await balance(client, m, card["id"]) == 11230
    assert (await status(client, s["consumer"], top["id"]))["status"] == "SUCCEEDED"
    await ledger_ok()


async def test_an_unpaid_top_up_expires_and_a_late_payment_still_credits(
    client, sms, provider_keys
):
    from domain.payments.models import TopUp
    from domain.payments.topups import expire_due

    keys = provider_keys[0]
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    top = (await start_top_up(client, s["consumer"], card["id"], 2000))["topUp"]
    expires = datetime.fromisoformat(top["expiresAt"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=31)
    await expire_due()
    assert (await status(client, s["consumer"], top["id"]))["status"] == "PENDING"
    clock.advance(timedelta(minutes=31))
    try:
        assert await expire_due() >= 1
        # (tokens issued before the jump have expired too: read the row itself)
        assert (await TopUp.get(id=top["id"])).status == "EXPIRED"
        late = await post_wechat(client, *wechat_notification(keys, top["id"], 2000))
        assert late.status_code == 204
    finally:
        clock.reset()
    assert (await status(client, s["consumer"], top["id"]))["status"] == "SUCCEEDED"
    assert await balance(client, m, card["id"]) == 12000
    await ledger_ok()


async def test_the_balance_cap_counts_waiting_top_ups_and_paid_excess_is_refund_due(
    client, sms, provider_keys
):
    keys = provider_keys[0]
    s = await setup(client, sms, load=400_000)  # named card, cap 5,000 yuan
    m, card = s["m"], s["card"]
    first = (await start_top_up(client, s["consumer"], card["id"], 80_000))["topUp"]
    over = await start_top_up(client, s["consumer"], card["id"], 30_000)
    assert over["errors"][0]["code"] == "BALANCE_CAP_EXCEEDED"

    # Meanwhile the counter fills the card up to the cap.
    cash = await gql(
        client,
        TOP_UP,
        {
            "i": {
                "cardId": card["id"],
                "amount": 100_000,
                "channel": "CASH",
                "idempotencyKey": key(),
            }
        },
        token=m.staff,
    )
    assert cash["data"]["topUp"]["errors"] == [], cash
    paid = await post_wechat(client, *wechat_notification(keys, first["id"], 80_000))
    assert paid.status_code == 204
    after = await status(client, s["consumer"], first["id"])
    assert after["status"] == "REFUND_DUE" and "BALANCE_CAP_EXCEEDED" in after["failureReason"]
    assert await balance(client, m, card["id"]) == 500_000
    again = await post_wechat(client, *wechat_notification(keys, first["id"], 80_000))
    assert again.status_code == 204
    assert await balance(client, m, card["id"]) == 500_000
    await ledger_ok()


async def test_top_ups_are_seen_only_by_their_people(client, sms):
    s = await setup(client, sms)
    top = (await start_top_up(client, s["consumer"], s["card"]["id"], 1000))["topUp"]
    other = await make_merchant(client)
    assert await status(client, other.staff, top["id"]) is None
    stranger = await consumer_token(client, sms)
    assert await status(client, stranger, top["id"]) is None
    assert (await status(client, s["m"].staff, top["id"]))["status"] == "PENDING"
    bank = await start_top_up(client, s["consumer"], s["card"]["id"], 1000, "BANK_TRANSFER")
    assert bank["errors"][0]["code"] == "CHANNEL_NOT_AVAILABLE"


def test_notification_json_is_what_wechat_sends(provider_keys):
    keys = provider_keys[0]
    body, headers = wechat_notification(keys, "top_x", 1)
    envelope = json.loads(body)
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")
