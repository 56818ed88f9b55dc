"""Merchant-presented EMVCo codes: a store's static code, signed dynamic order codes, resolving a
scanned payload (CRC, signature, expiry), and the QR images that carry them."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta
from urllib.parse import quote

import pytest
import zxingcpp
from PIL import Image

from domain import clock
from domain.codes import emvco
from tests.helpers import consumer_token, gql, make_card, make_merchant, pay

STORE_CODE = """query($id: ID!) { storeMerchantCode(storeId: $id) {
  payload dynamic amount reference expiresAt imagePath store { id name } } }"""
STORE_CODE_SVG = """query($id: ID!) { storeMerchantCode(storeId: $id) { payload svg(scale: 2) } }"""
CREATE = """mutation($i: MerchantCodeCreateInput!) { merchantCodeCreate(input: $i) {
  merchantCode { payload dynamic amount reference expiresAt imagePath store { id } }
  errors { code field message } } }"""
RESOLVE = """mutation($i: MerchantCodeResolveInput!) { merchantCodeResolve(input: $i) {
  store { id name merchantId } amount orderId expiresAt dynamic errors { code field message } } }"""

# The example of the EMVCo MPM specification (a Beijing merchant, Chinese in template 64).
EMVCO_EXAMPLE = (
    "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678"
    "520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京"
    "540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708"
    "123456786304A13A"
)


def codes(payload):
    return [e["code"] for e in payload["errors"]]


async def resolve(client, token, payload):
    body = await gql(client, RESOLVE, {"i": {"payload": payload}}, token=token)
    return body["data"]["merchantCodeResolve"]


async def order_code(client, m, amount, **extra):
    body = await gql(
        client, CREATE, {"i": {"storeId": m.store_id, "amount": amount, **extra}}, token=m.staff
    )
    payload = body["data"]["merchantCodeCreate"]
    assert payload["errors"] == [], payload
    return payload["merchantCode"]


def reclose(payload: str) -> str:
    """Recompute the CRC of an edited payload, as a forger would."""
    return emvco.with_crc(payload[:-8])


async def test_a_store_code_is_static_emvco_and_resolves_to_the_store(client, sms):
    m = await make_merchant(client)
    body = await gql(client, STORE_CODE, {"id": m.store_id}, token=m.staff)
    code = body["data"]["storeMerchantCode"]
    payload = code["payload"]
    assert payload.startswith("000201" + "010211")
    fields = emvco.decode(payload)  # the CRC checks out
    assert fields["53"] == "156" and fields["58"] == "CN" and "54" not in fields
    assert fields["52"] == "5812"  # 餐饮 (CATERING)
    assert fields["60"] == "BEIJING"  # region 110105
    account = emvco.template(fields["26"])
    assert account["00"] == "CN.YIKATONG" and account["01"] == m.store_id
    language = emvco.template(fields["64"])
    assert language["00"] == "ZH" and language["01"] == "测试商户 总店" and language["02"] == "北京"
    assert payload.endswith(f"{emvco.crc16_ccitt_false(payload[:-4].encode()):04X}")
    assert code["dynamic"] is False and code["amount"] is None and code["expiresAt"] is None
    again = await gql(client, STORE_CODE, {"id": m.store_id}, token=m.admin)
    assert again["data"]["storeMerchantCode"]["payload"] == payload  # printable: it never changes

    consumer = await consumer_token(client, sms)
    resolved = await resolve(client, consumer, payload)
    assert resolved["errors"] == []
    assert resolved["store"] == {"id": m.store_id, "name": "总店", "merchantId": m.merchant_id}
    assert resolved["amount"] is None and resolved["orderId"] is None
    assert resolved["dynamic"] is False


async def test_an_order_code_carries_a_signed_amount_and_reference_then_is_paid(client, sms):
    m = await make_merchant(client)
    code = await order_code(client, m, 2372, reference="ORDER-2024.05_1")
    payload = code["payload"]
    assert payload.startswith("000201010212")
    fields = emvco.decode(payload)
    assert fields["54"] == "23.72"
    assert emvco.template(fields["62"])["05"] == "ORDER-2024.05_1"
    assert code["dynamic"] and code["amount"] == 2372 and code["reference"] == "ORDER-2024.05_1"

    phone = "133" + f"{secrets.randbelow(10**8):08d}"
    consumer = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=5000, holder_phone=phone)
    resolved = await resolve(client, consumer, payload)
    assert resolved["errors"] == []
    assert (resolved["store"]["id"], resolved["amount"], resolved["orderId"]) == (
        m.store_id,
        2372,
        "ORDER-2024.05_1",
    )
    assert resolved["expiresAt"] == code["expiresAt"]
    # The app pays what the code asked for, with an idempotency key of its choosing.
    paid = await pay(client, m, card["id"], resolved["amount"], token=consumer)
    assert paid["errors"] == [] and paid["payment"]["card"]["balance"] == 5000 - 2372

    generated = await order_code(client, m, 1)
    assert generated["reference"] and len(generated["reference"]) <= 25
    assert emvco.decode(generated["payload"])["54"] == "0.01"


async def test_edited_codes_fail_their_crc_or_signature(client, sms):
    m = await make_merchant(client)
    consumer = await consumer_token(client, sms)
    payload = (await order_code(client, m, 2372, reference="A1"))["payload"]
    assert "540523.72" in payload

    cheaper = payload.replace("540523.72", "540503.72")
    result = await resolve(client, consumer, cheaper)  # CRC left as it was
    assert codes(result) == ["CODE_INVALID"] and "校验失败" in result["errors"][0]["message"]
    result = await resolve(client, consumer, reclose(cheaper))  # CRC recomputed: the signature
    assert codes(result) == ["CODE_INVALID"] and "签名不符" in result["errors"][0]["message"]
    assert result["store"] is None and result["amount"] is None

    other_store = reclose(payload.replace(m.store_id, m.other_store_id))
    assert emvco.decode(other_store)  # well-formed, right CRC...
    assert codes(await resolve(client, consumer, other_store)) == ["CODE_INVALID"]  # ...unsigned
    other_order = reclose(payload.replace("0502A1", "0502A2"))
    assert codes(await resolve(client, consumer, other_order)) == ["CODE_INVALID"]
    static = (await gql(client, STORE_CODE, {"id": m.store_id}, token=m.staff))["data"][
        "storeMerchantCode"
    ]["payload"]
    with_amount = reclose(static.replace("5303156", "5303156540599.00"))
    assert codes(await resolve(client, consumer, with_amount)) == ["CODE_INVALID"]

    for bad in ("", "000201", payload[:-1], payload.lower(), "x" * 600, EMVCO_EXAMPLE):
        assert codes(await resolve(client, consumer, bad)) == ["CODE_INVALID"], bad[:30]
    lang = (
        await gql(
            client,
            RESOLVE,
            {"i": {"payload": EMVCO_EXAMPLE}},
            token=consumer,
            headers={"Accept-Language": "en"},
        )
    )["data"]["merchantCodeResolve"]
    assert "not a Yikatong code" in lang["errors"][0]["message"]


async def test_an_order_code_expires(client, sms):
    m = await make_merchant(client)
    consumer = await consumer_token(client, sms)
    payload = (await order_code(client, m, 100, expiresInSeconds=60))["payload"]
    assert (await resolve(client, consumer, payload))["errors"] == []
    clock.advance(timedelta(seconds=61))
    try:
        assert codes(await resolve(client, consumer, payload)) == ["CODE_EXPIRED"]
    finally:
        clock.reset()
    for ttl in (59, 86_401):
        body = await gql(
            client,
            CREATE,
            {"i": {"storeId": m.store_id, "amount": 1, "expiresInSeconds": ttl}},
            token=m.staff,
        )
        assert codes(body["data"]["merchantCodeCreate"]) == ["INVALID_INPUT"]


async def test_codes_are_made_only_for_ones_own_store(client):
    m = await make_merchant(client)
    other = await make_merchant(client, operator=m.operator)
    body = await gql(client, STORE_CODE, {"id": m.store_id}, token=other.staff)
    assert body["data"]["storeMerchantCode"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(client, STORE_CODE, {"id": m.other_store_id}, token=m.staff)
    assert body["data"]["storeMerchantCode"] is None  # staff of the other store only
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(client, STORE_CODE, {"id": "sto_nope"}, token=m.admin)
    assert body["data"]["storeMerchantCode"] is None and "errors" not in body
    body = await gql(client, STORE_CODE, {"id": m.other_store_id}, token=m.admin)
    assert body["data"]["storeMerchantCode"]["store"]["id"] == m.other_store_id
    body = await gql(
        client,
        CREATE,
        {"i": {"storeId": m.store_id, "amount": 100}},
        terminal_key=other.terminal_key,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad in ({"amount": 0}, {"amount": 100, "reference": "中文"}, {"amount": 10**12}):
        body = await gql(
            client, CREATE, {"i": {"storeId": m.store_id, **bad}}, terminal_key=m.terminal_key
        )
        assert codes(body["data"]["merchantCodeCreate"]) == ["INVALID_INPUT"], bad


def decode_png(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode
    return str(found[0].text)


async def test_qr_images_decode_back_to_the_payload(client):
    m = await make_merchant(client)
    body = await gql(client, STORE_CODE, {"id": m.store_id}, token=m.staff)
    code = body["data"]["storeMerchantCode"]
    payload = code["payload"]
    assert code["imagePath"] == f"/qr/{quote(payload, safe='')}.png"

    png = await client.get(code["imagePath"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert "max-age=31536000" in png.headers["cache-control"]
    assert decode_png(png.content) == payload  # Chinese in template 64 included
    again = await client.get(code["imagePath"], headers={"If-None-Match": png.headers["etag"]})
    assert again.status_code == 304

    svg = await client.get(code["imagePath"][:-4] + ".svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<script" not in svg.text

    for number in ("881234567890123456", EMVCO_EXAMPLE):
        response = await client.get(f"/qr/{quote(number, safe='')}.png?scale=3")
        assert decode_png(response.content) == number
    assert (await client.get(f"/qr/{'1' * 513}.png")).status_code == 414
    assert (await client.get("/qr/abc.gif")).status_code == 404
    assert (await client.get("/qr/abc.png?scale=99")).status_code == 400
    assert (await client.get("/qr/abc.png?scale=x")).status_code == 400

    body = await gql(client, STORE_CODE_SVG, {"id": m.store_id}, token=m.staff)
    assert body["data"]["storeMerchantCode"]["svg"].startswith("<svg")


@pytest.mark.parametrize("payload", ["0", "A" * 100, "商户付款码 " * 20])
def test_qr_symbols_round_trip(payload):
    from domain.codes import qr

    assert decode_png(qr.render(payload, "png", 4)) == payload
