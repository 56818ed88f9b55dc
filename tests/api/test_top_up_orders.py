"""Order placement for online top-ups, in the providers' wire formats.

WeChat Pay: the app's `topUp` places an APP order with the fake WeChat Pay server of
tests/conftest.py (a real socket), which checks our WECHATPAY2-SHA256-RSA2048 signature with the
merchant public key and every body field, and answers signed with the platform key; the app
gets the PayReq fields signed with the merchant key. Alipay: no server call, the order string
is signed with our application key. Failures at the provider end in a clean UserError, with no
money moved and nothing left waiting.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import socket
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app.channels import alipay_config, wechatpay_config
from app.settings import SettingsError
from domain import clock
from domain import config as domain_config
from domain.payments.models import TopUp
from tests.api.test_money import ledger_ok
from tests.api.test_online_top_ups import (
    alipay_body,
    balance,
    post_alipay,
    post_wechat,
    setup,
    wechat_notification,
)
from tests.conftest import PUBLIC_URL
from tests.helpers import gql, key

BEIJING = timezone(timedelta(hours=8))
PAY_REQUEST = """payRequest { channel alipayOrderString
  wechatApp { appId partnerId prepayId package nonceStr timeStamp sign } }"""
START = f"""mutation($i: TopUpInput!) {{ topUp(input: $i) {{
  topUp {{ id status amount channel expiresAt failureReason {PAY_REQUEST} }}
  errors {{ code field message }} }} }}"""
BY_ID = f"""query($id: ID!) {{ topUpById(id: $id) {{ id status {PAY_REQUEST} }} }}"""


@pytest.fixture
def wechat(wechatpay_server: Any) -> Any:
    wechatpay_server.reset()
    yield wechatpay_server
    wechatpay_server.reset()


async def top_up(
    client: Any, token: str, card_id: str, amount: int, channel: str, idem: str | None = None
) -> dict[str, Any]:
    variables = {
        "i": {
            "cardId": card_id,
            "amount": amount,
            "channel": channel,
            "idempotencyKey": idem or key(),
        }
    }
    body = await gql(client, START, variables, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["topUp"]
    return payload


async def by_id(client: Any, token: str, top_up_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql(client, BY_ID, {"id": top_up_id}, token=token))["data"][
        "topUpById"
    ]
    return found


def verifies(public_key: Any, signature_b64: str, message: bytes) -> bool:
    try:
        public_key.verify(
            base64.b64decode(signature_b64), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def app_sign_verifies(keys: Any, app: dict[str, Any]) -> bool:
    """APP调起支付: four lines appid, timestamp, noncestr, prepayid, each ending in \\n."""
    message = f"{app['appId']}\n{app['timeStamp']}\n{app['nonceStr']}\n{app['prepayId']}\n"
    return verifies(keys.wechatpay_merchant_private_key.public_key(), app["sign"], message.encode())


def beijing(at: str, fmt: str | None = None) -> str:
    moment = datetime.fromisoformat(at).astimezone(BEIJING).replace(microsecond=0)
    return moment.strftime(fmt) if fmt else moment.isoformat()


# ---------------------------------------------------------------- WeChat Pay


async def test_wechat_pay_top_up_places_the_order_and_returns_signed_app_params(
    client, sms, provider_keys, wechat
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    started = await top_up(client, s["consumer"], card["id"], 50000, "WECHAT_PAY")
    assert started["errors"] == [], started
    top = started["topUp"]
    assert top["status"] == "PENDING"

    # The order WeChat received: our signature held (or it would have answered 401), and it is
    # the top-up, to the fen, payable until the top-up expires, notified to our callback.
    [order] = wechat.calls_for(top["id"])
    assert order == {
        "appid": keys.wechatpay_appid,
        "mchid": keys.wechatpay_mchid,
        "description": order["description"],
        "out_trade_no": top["id"],
        "time_expire": beijing(top["expiresAt"]),
        "notify_url": f"{PUBLIC_URL}/callbacks/wechatpay",
        "amount": {"total": 50000, "currency": "CNY"},
    }
    assert order["description"].endswith("-储值卡充值")

    pay = top["payRequest"]
    assert (pay["channel"], pay["alipayOrderString"]) == ("WECHAT_PAY", None)
    app = pay["wechatApp"]
    assert app["appId"] == keys.wechatpay_appid
    assert app["partnerId"] == keys.wechatpay_mchid
    assert app["prepayId"] == wechat.orders[top["id"]][1]
    assert app["package"] == "Sign=WXPay"
    assert 0 < len(app["nonceStr"]) <= 32
    assert re.fullmatch(r"\d{10}", app["timeStamp"])
    assert abs(int(app["timeStamp"]) - clock.now().timestamp()) < 60
    assert app_sign_verifies(keys, app)
    assert not app_sign_verifies(keys, {**app, "prepayId": app["prepayId"] + "0"})

    # Paid: the notification credits it, and there is nothing left to pay.
    paid = await post_wechat(client, *wechat_notification(keys, top["id"], 50000))
    assert paid.status_code == 204
    assert await balance(client, m, card["id"]) == 60000
    done = await by_id(client, s["consumer"], top["id"])
    assert (done["status"], done["payRequest"]) == ("SUCCEEDED", None)
    await ledger_ok()


async def test_a_retry_with_the_same_key_returns_the_same_top_up_and_order(
    client, sms, provider_keys, wechat
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    idem = key()
    first = (await top_up(client, s["consumer"], s["card"]["id"], 2000, "WECHAT_PAY", idem))[
        "topUp"
    ]
    again = (await top_up(client, s["consumer"], s["card"]["id"], 2000, "WECHAT_PAY", idem))[
        "topUp"
    ]
    assert again["id"] == first["id"]
    fields = ("appId", "partnerId", "prepayId", "package")
    pay1, pay2 = first["payRequest"]["wechatApp"], again["payRequest"]["wechatApp"]
    assert [pay1[f] for f in fields] == [pay2[f] for f in fields]
    assert app_sign_verifies(keys, pay2)
    assert len(wechat.calls_for(first["id"])) == 1  # the prepay_id was kept, not re-ordered
    read = await by_id(client, s["consumer"], first["id"])
    assert read["payRequest"]["wechatApp"]["prepayId"] == pay1["prepayId"]

    # The first attempt died between committing the top-up and hearing from WeChat: the retry
    # places the same order again, same out_trade_no and same parameters (WeChat requires
    # time_expire unchanged), and gets its prepay_id.
    await TopUp.filter(id=first["id"]).update(prepay_id=None)
    assert (await by_id(client, s["consumer"], first["id"]))["payRequest"] is None
    clock.advance(timedelta(seconds=5))  # later, but the order's time_expire must not move
    try:
        third = (await top_up(client, s["consumer"], s["card"]["id"], 2000, "WECHAT_PAY", idem))[
            "topUp"
        ]
    finally:
        clock.reset()
    assert third["id"] == first["id"]
    repeated = wechat.calls_for(first["id"])
    assert len(repeated) == 2 and repeated[0] == repeated[1]
    assert third["payRequest"]["wechatApp"]["prepayId"] == pay1["prepayId"]


@pytest.mark.parametrize("failure", ["rejected", "down", "forged", "unsigned"])
async def test_a_failing_provider_is_a_clean_error_and_the_retry_starts_afresh(
    client, sms, provider_keys, wechat, failure
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    idem = key()
    wechat.failure = failure
    refused = await top_up(client, s["consumer"], card["id"], 3000, "WECHAT_PAY", idem)
    assert refused["topUp"] is None
    [error] = refused["errors"]
    assert (error["code"], error["field"]) == ("PROVIDER_UNAVAILABLE", "channel")
    assert "ERROR" not in error["message"]  # WeChat's codes are logged, not shown
    [failed] = await TopUp.filter(card_id=card["id"], channel="WECHAT_PAY")
    assert (failed.status, failed.prepay_id) == ("FAILED", None)
    assert failed.failure_reason.startswith("PROVIDER_UNAVAILABLE")
    assert (await by_id(client, s["consumer"], failed.id))["payRequest"] is None
    assert await balance(client, m, card["id"]) == 10000

    wechat.reset()
    retried = await top_up(client, s["consumer"], card["id"], 3000, "WECHAT_PAY", idem)
    assert retried["errors"] == [], retried
    assert retried["topUp"]["id"] != failed.id
    assert app_sign_verifies(keys, retried["topUp"]["payRequest"]["wechatApp"])
    assert await balance(client, m, card["id"]) == 10000
    await ledger_ok()


async def test_a_failed_order_does_not_hold_the_balance_cap(client, sms, wechat):
    s = await setup(client, sms, load=400_000)  # named card, cap 5,000 yuan
    wechat.failure = "down"
    refused = await top_up(client, s["consumer"], s["card"]["id"], 100_000, "WECHAT_PAY")
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    wechat.reset()
    # Had the failed top-up stayed PENDING, 4,000 + 1,000 waiting + 1,000 would pass the cap.
    fine = await top_up(client, s["consumer"], s["card"]["id"], 100_000, "WECHAT_PAY")
    assert fine["errors"] == [], fine


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("trouble", ["timeout", "refused"])
async def test_network_failures_are_a_clean_error(client, sms, wechat, monkeypatch, trouble):
    cfg = domain_config.get()
    wx = cfg.wechatpay
    assert wx is not None and wx.ordering is not None
    if trouble == "timeout":
        wechat.failure, wechat.delay = "slow", 1.0
        ordering = dataclasses.replace(wx.ordering, timeout_seconds=0.2)
    else:
        ordering = dataclasses.replace(wx.ordering, api_base=f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(cfg, "wechatpay", dataclasses.replace(wx, ordering=ordering))
    s = await setup(client, sms)
    refused = await top_up(client, s["consumer"], s["card"]["id"], 1000, "WECHAT_PAY")
    assert refused["errors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    [failed] = await TopUp.filter(card_id=s["card"]["id"], channel="WECHAT_PAY")
    assert failed.status == "FAILED"


async def test_without_order_settings_the_channel_is_not_offered_but_notifications_credit(
    client, sms, provider_keys, wechat, monkeypatch
):
    keys = provider_keys[0]
    s = await setup(client, sms)
    earlier = (await top_up(client, s["consumer"], s["card"]["id"], 1500, "WECHAT_PAY"))["topUp"]
    cfg = domain_config.get()
    assert cfg.wechatpay is not None
    monkeypatch.setattr(cfg, "wechatpay", dataclasses.replace(cfg.wechatpay, ordering=None))
    refused = await top_up(client, s["consumer"], s["card"]["id"], 1500, "WECHAT_PAY")
    assert refused["errors"][0]["code"] == "CHANNEL_NOT_AVAILABLE"
    paid = await post_wechat(client, *wechat_notification(keys, earlier["id"], 1500))
    assert paid.status_code == 204
    assert await balance(client, s["m"], s["card"]["id"]) == 11500


async def test_counter_and_expired_top_ups_have_nothing_to_pay(client, sms, wechat):
    from domain.payments import topups

    s = await setup(client, sms)
    cash = await top_up(client, s["m"].staff, s["card"]["id"], 500, "CASH")
    assert cash["errors"] == [] and cash["topUp"]["payRequest"] is None, cash
    pending = (await top_up(client, s["consumer"], s["card"]["id"], 500, "WECHAT_PAY"))["topUp"]
    row = await TopUp.get(id=pending["id"])
    assert await topups.pay_request(row) is not None
    clock.advance(timedelta(minutes=31))
    try:
        assert await topups.pay_request(row) is None  # past expiresAt, even before the sweep
    finally:
        clock.reset()


# ---------------------------------------------------------------- Alipay


def alipay_signed_content(params: dict[str, str], *, without: tuple[str, ...] = ()) -> bytes:
    skip = {"sign", *without}
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in skip).encode()


async def test_alipay_top_up_returns_an_order_string_signed_with_our_app_key(
    client, sms, provider_keys, wechat
):
    keys = provider_keys[0]
    app_public = keys.alipay_app_private_key.public_key()
    s = await setup(client, sms)
    m, card = s["m"], s["card"]
    idem = key()
    top = (await top_up(client, s["consumer"], card["id"], 1230, "ALIPAY", idem))["topUp"]
    pay = top["payRequest"]
    assert (pay["channel"], pay["wechatApp"]) == ("ALIPAY", None)
    assert wechat.calls_for(top["id"]) == []  # Alipay's app payment needs no server call

    params = dict(parse_qsl(pay["alipayOrderString"], keep_blank_values=True, strict_parsing=True))
    assert set(params) == {
        "app_id",
        "method",
        "format",
        "charset",
        "sign_type",
        "timestamp",
        "version",
        "notify_url",
        "biz_content",
        "sign",
    }
    assert params["app_id"] == keys.alipay_app_id
    assert params["method"] == "alipay.trade.app.pay"
    assert (params["format"], params["charset"], params["sign_type"], params["version"]) == (
        "JSON",
        "utf-8",
        "RSA2",
        "1.0",
    )
    assert params["notify_url"] == f"{PUBLIC_URL}/callbacks/alipay"
    stamp = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    assert abs((stamp - clock.now()).total_seconds()) < 60
    biz = json.loads(params["biz_content"])
    assert biz == {
        "out_trade_no": top["id"],
        "total_amount": "12.30",
        "subject": biz["subject"],
        "product_code": "QUICK_MSECURITY_PAY",
        "time_expire": beijing(top["expiresAt"], "%Y-%m-%d %H:%M:%S"),
    }
    assert biz["subject"].endswith("-储值卡充值") and not set("/=&") & set(biz["subject"])

    # Signed as a request is: everything but sign, sign_type included, with our app key.
    assert verifies(app_public, params["sign"], alipay_signed_content(params))
    assert not verifies(
        app_public, params["sign"], alipay_signed_content(params, without=("sign_type",))
    )
    tampered = dict(params, biz_content=params["biz_content"].replace("12.30", "0.01"))
    assert not verifies(app_public, params["sign"], alipay_signed_content(tampered))

    again = (await top_up(client, s["consumer"], card["id"], 1230, "ALIPAY", idem))["topUp"]
    assert again["id"] == top["id"]
    params2 = dict(parse_qsl(again["payRequest"]["alipayOrderString"]))
    assert params2["biz_content"] == params["biz_content"]
    assert verifies(app_public, params2["sign"], alipay_signed_content(params2))

    paid = await post_alipay(client, alipay_body(keys, top["id"], "12.30"))
    assert paid.text == "success"
    assert await balance(client, m, card["id"]) == 11230
    assert (await by_id(client, s["consumer"], top["id"]))["payRequest"] is None
    await ledger_ok()


# ---------------------------------------------------------------- settings


def test_settings_offer_a_channel_only_when_fully_configured(settings):
    both = wechatpay_config(settings)
    assert both is not None and both.ordering is not None
    assert both.ordering.notify_url == f"{PUBLIC_URL}/callbacks/wechatpay"
    ali = alipay_config(settings)
    assert ali is not None and ali.ordering is not None

    # Notification settings alone: accepted (earlier top-ups still credit), channel not offered.
    bare = dataclasses.replace(
        settings,
        wechatpay_merchant_private_key_file="",
        wechatpay_merchant_serial="",
        alipay_app_private_key_file="",
    )
    assert wechatpay_config(bare).ordering is None
    assert alipay_config(bare).ordering is None
    nothing = dataclasses.replace(
        bare,
        wechatpay_mchid="",
        wechatpay_appid="",
        wechatpay_apiv3_key="",
        wechatpay_platform_public_key_file="",
        wechatpay_platform_public_key_id="",
        alipay_app_id="",
        alipay_public_key_file="",
    )
    assert (wechatpay_config(nothing), alipay_config(nothing)) == (None, None)

    half = [
        dataclasses.replace(settings, wechatpay_merchant_serial=""),
        dataclasses.replace(settings, public_url=""),
        dataclasses.replace(settings, public_url="http://yikatong.example.com"),
        dataclasses.replace(settings, public_url="https://yikatong.example.com/?x=1"),
        dataclasses.replace(settings, wechatpay_api_base="ftp://api.mch.weixin.qq.com"),
        dataclasses.replace(settings, env="production"),  # http API base (the fake)
        dataclasses.replace(settings, wechatpay_merchant_private_key_file="/nonexistent"),
        dataclasses.replace(
            settings,
            wechatpay_merchant_private_key_file=settings.wechatpay_platform_public_key_file,
        ),
        dataclasses.replace(nothing, wechatpay_merchant_serial="ABC", wechatpay_api_base=""),
        dataclasses.replace(settings, top_up_ttl=7201),
    ]
    for wrong in half:
        with pytest.raises(SettingsError):
            wechatpay_config(wrong)
    for wrong in [
        dataclasses.replace(settings, public_url=""),
        dataclasses.replace(
            nothing, alipay_app_private_key_file=settings.alipay_app_private_key_file
        ),
        dataclasses.replace(settings, alipay_app_private_key_file=settings.alipay_public_key_file),
    ]:
        with pytest.raises(SettingsError):
            alipay_config(wrong)


# ---------------------------------------------------------------- the wire formats, by the docs


def test_wechat_request_signing_string_and_header_match_the_documented_layout(provider_keys):
    from domain.channels import wechatpay_orders as wo

    # 签名生成 example in the API v3 docs: GET /v3/certificates, no body -> an empty last line.
    message = wo.request_signing_message(
        "GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", b""
    )
    assert message == b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    keys = provider_keys[0]
    ordering = wo.WechatPayOrdering(
        merchant_private_key=keys.wechatpay_merchant_private_key,
        merchant_serial="1dde55ad98ed71d6edd4a4a16996de7b47773a8c",
        notify_url="https://example.com/callbacks/wechatpay",
    )
    header = wo.authorization(
        "1900009191",
        ordering,
        "GET",
        "/v3/certificates",
        b"",
        timestamp="1554208460",
        nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    match = re.fullmatch(
        r'WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        r'signature="([A-Za-z0-9+/=]+)",timestamp="1554208460",'
        r'serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"',
        header,
    )
    assert match is not None, header
    public = keys.wechatpay_merchant_private_key.public_key()
    assert verifies(public, match.group(1), message)
    assert wo.rfc3339_beijing(datetime(2015, 5, 20, 5, 29, 35, 123, tzinfo=UTC)) == (
        "2015-05-20T13:29:35+08:00"
    )


def test_alipay_request_sign_content_matches_the_documented_example():
    from domain.channels import alipay_orders as ao

    biz = (
        '{"timeout_express":"30m","product_code":"QUICK_MSECURITY_PAY","total_amount":"0.01",'
        '"subject":"1","body":"我是测试数据","out_trade_no":"IQJZSRC1YMQB5HU"}'
    )
    params = {
        "app_id": "2015052600090779",
        "biz_content": biz,
        "charset": "utf-8",
        "format": "json",
        "method": "alipay.trade.app.pay",
        "notify_url": "http://domain.merchant.com/payment_notify",
        "sign_type": "RSA2",
        "timestamp": "2016-08-25 20:26:31",
        "version": "1.0",
        "sign": "ignored",
        "empty": "",
    }
    assert ao.sign_content(params) == (
        f"app_id=2015052600090779&biz_content={biz}&charset=utf-8&format=json"
        "&method=alipay.trade.app.pay&notify_url=http://domain.merchant.com/payment_notify"
        "&sign_type=RSA2&timestamp=2016-08-25 20:26:31&version=1.0"
    )
    assert [ao.yuan(f) for f in (1, 5, 100, 1230, 10_000_000_000)] == [
        "0.01",
        "0.05",
        "1.00",
        "12.30",
        "100000000.00",
    ]
    assert ao.beijing_time(datetime(2016, 8, 25, 12, 26, 31, tzinfo=UTC)) == ("2016-08-25 20:26:31")
    for bad in (0, -1, True):
        with pytest.raises(ValueError):
            ao.yuan(bad)


def test_private_keys_load_in_the_shapes_the_providers_hand_out(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from domain.channels import signing

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    shapes = []
    for encoding, fmt in (
        (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL),
    ):
        data = key.private_bytes(encoding, fmt, serialization.NoEncryption())
        shapes.append(data if encoding is serialization.Encoding.PEM else base64.b64encode(data))
    for data in shapes:
        loaded = signing.load_private_key(data)
        signature = signing.sign_sha256_rsa(loaded, b"x")
        assert verifies(key.public_key(), signature, b"x")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    for bad in (
        small.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public,
        encrypted,
        b"not a key",
    ):
        with pytest.raises(ValueError):
            signing.load_private_key(bad)
