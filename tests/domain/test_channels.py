"""Payment-provider notification adapters: notifications are built here exactly as WeChat Pay and
Alipay build them (our own RSA keys stand in for the providers'), then fed to the adapters."""

from __future__ import annotations

import base64
import json
import secrets
import string
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from domain.channels import alipay, wechatpay
from domain.channels.errors import ChannelError, ErrorCode
from domain.channels.keys import load_certificate, load_public_key

NOW = datetime(2024, 5, 20, 4, 30, 0, tzinfo=UTC)
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
PUB_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000000000"


@pytest.fixture(scope="module")
def wechat_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def cert_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate_pem(cert_key) -> bytes:
    """A self-signed certificate standing in for a WeChat Pay 平台证书."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (test)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(cert_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def cert_serial(certificate_pem) -> str:
    cert = x509.load_pem_x509_certificate(certificate_pem)
    # WeChat writes the serial as upper-case hex (as Java's BigInteger.toString(16) does).
    return format(cert.serial_number, "X")


@pytest.fixture(scope="module")
def config(wechat_key, certificate_pem, cert_serial) -> wechatpay.WechatPayConfig:
    return wechatpay.WechatPayConfig(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        platform_keys={
            PUB_KEY_ID: wechat_key.public_key(),
            cert_serial: load_public_key(certificate_pem),
        },
    )


# ---------------------------------------------------------------- WeChat Pay, built by hand


def transaction(**overrides) -> dict:
    """A decrypted 支付成功通知 resource, shaped as the API v3 docs show it."""
    tx = {
        "mchid": MCHID,
        "appid": APPID,
        "out_trade_no": "TU20240520000123",
        "transaction_id": "4200002201202405201234567890",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2024-05-20T12:29:58+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": 10000,
            "payer_total": 10000,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    tx.update(overrides)
    return tx


def encrypted_body(tx: dict, *, apiv3_key: str = APIV3_KEY, original_type="transaction") -> bytes:
    """The notification body: the transaction sealed with AES-256-GCM under the APIv3 key, a
    12-character random nonce and associated_data "transaction"; the tag ends the ciphertext."""
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    associated_data = "transaction"
    sealed = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(tx, ensure_ascii=False).encode(), associated_data.encode()
    )
    envelope = {
        "id": "EV-2018022511223320873",
        "create_time": "2024-05-20T12:29:59+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(sealed).decode(),
            "associated_data": associated_data,
            "nonce": nonce,
        },
    }
    return json.dumps(envelope, ensure_ascii=False).encode()


def signed_headers(key: rsa.RSAPrivateKey, serial: str, body: bytes, at: datetime = NOW) -> dict:
    """Headers as WeChat sends them: SHA256withRSA over "timestamp\\nnonce\\nbody\\n"."""
    timestamp = str(int(at.timestamp()))
    nonce = secrets.token_hex(16)
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def refused(code: ErrorCode, call, *args) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value
    return caught.value


# ---------------------------------------------------------------- WeChat Pay


def test_wechat_valid_notification_decrypts_and_returns_fields(config, wechat_key):
    body = encrypted_body(transaction())
    n = wechatpay.verify_notification(
        config, signed_headers(wechat_key, PUB_KEY_ID, body), body, NOW
    )
    assert n.notification_id == "EV-2018022511223320873"
    assert n.event_type == "TRANSACTION.SUCCESS"
    assert n.summary == "支付成功"
    assert n.out_trade_no == "TU20240520000123"
    assert n.transaction_id == "4200002201202405201234567890"
    assert n.trade_state is wechatpay.TradeState.SUCCESS
    assert n.total_fen == 10000 and isinstance(n.total_fen, int)
    assert n.currency == "CNY"
    assert (n.mchid, n.appid) == (MCHID, APPID)
    assert n.success_time == datetime(2024, 5, 20, 4, 29, 58, tzinfo=UTC)
    assert n.payer_openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert n.raw["trade_state_desc"] == "支付成功"
    assert wechatpay.credits(n)


def test_wechat_unpaid_states_do_not_credit(config, wechat_key):
    tx = transaction(trade_state="NOTPAY", trade_state_desc="未支付")
    del tx["success_time"]
    body = encrypted_body(tx)
    n = wechatpay.verify_notification(
        config, signed_headers(wechat_key, PUB_KEY_ID, body), body, NOW
    )
    assert n.trade_state is wechatpay.TradeState.NOTPAY
    assert n.success_time is None
    assert not wechatpay.credits(n)


def test_wechat_tampered_body_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    tampered = body.replace("支付成功".encode(), "支付成功 ".encode(), 1)
    assert tampered != body
    error = refused(
        ErrorCode.SIGNATURE_INVALID, wechatpay.verify_notification, config, headers, tampered, NOW
    )
    reply = wechatpay.failure_reply(error)
    assert reply.status == 401
    assert json.loads(reply.body) == {"code": "FAIL", "message": "signature verification failed"}


def test_wechat_body_reserialised_by_a_framework_is_rejected(config, wechat_key):
    # The signature covers the exact bytes: the same JSON with other spacing must not verify.
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    refused(
        ErrorCode.SIGNATURE_INVALID,
        wechatpay.verify_notification,
        config,
        headers,
        reserialised,
        NOW,
    )


def test_wechat_signature_by_another_key_is_rejected(config, other_key):
    body = encrypted_body(transaction())
    headers = signed_headers(other_key, PUB_KEY_ID, body)
    refused(ErrorCode.SIGNATURE_INVALID, wechatpay.verify_notification, config, headers, body, NOW)


def test_wechat_garbage_signature_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    headers["Wechatpay-Signature"] = "not base64 at all!"
    refused(ErrorCode.SIGNATURE_INVALID, wechatpay.verify_notification, config, headers, body, NOW)


def test_wechat_unknown_serial_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, "PUB_KEY_ID_0114232134912410000000000000000999", body)
    error = refused(
        ErrorCode.UNKNOWN_SERIAL, wechatpay.verify_notification, config, headers, body, NOW
    )
    assert wechatpay.failure_reply(error).status == 401


def test_wechat_public_key_id_and_certificate_serial_both_work(
    config, wechat_key, cert_key, cert_serial
):
    body = encrypted_body(transaction())
    by_key_id = signed_headers(wechat_key, PUB_KEY_ID, body)
    by_certificate = signed_headers(cert_key, cert_serial, body)
    for headers in (by_key_id, by_certificate):
        n = wechatpay.verify_notification(config, headers, body, NOW)
        assert n.out_trade_no == "TU20240520000123"
    # The serial picks the key: the certificate's key under the public-key id fails.
    crossed = signed_headers(cert_key, PUB_KEY_ID, body)
    refused(ErrorCode.SIGNATURE_INVALID, wechatpay.verify_notification, config, crossed, body, NOW)
    # A certificate serial pasted in lower case still matches.
    lower = signed_headers(cert_key, cert_serial.lower(), body)
    assert wechatpay.verify_notification(config, lower, body, NOW).total_fen == 10000


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-301, False), (301, False), (-299, True), (299, True), (-300, True), (300, True), (0, True)],
)
def test_wechat_timestamp_window(config, wechat_key, offset, accepted):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body, at=NOW + timedelta(seconds=offset))
    if accepted:
        assert wechatpay.verify_notification(config, headers, body, NOW).total_fen == 10000
    else:
        refused(
            ErrorCode.TIMESTAMP_OUT_OF_WINDOW,
            wechatpay.verify_notification,
            config,
            headers,
            body,
            NOW,
        )


def test_wechat_signature_probe_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    # Rejected by its prefix, whatever follows it.
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    error = refused(
        ErrorCode.SIGNATURE_PROBE, wechatpay.verify_notification, config, headers, body, NOW
    )
    reply = wechatpay.failure_reply(error)
    assert reply.status == 401
    assert json.loads(reply.body)["code"] == "FAIL"


def test_wechat_wrong_apiv3_key_fails_to_decrypt(config, wechat_key):
    body = encrypted_body(transaction(), apiv3_key="Z" * 32)
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    error = refused(
        ErrorCode.DECRYPT_FAILED, wechatpay.verify_notification, config, headers, body, NOW
    )
    assert wechatpay.failure_reply(error).status == 500


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "EV-1", "resource_type": "encrypt-resource", "resource": {',
        b"[1, 2, 3]",
        b"\xff\xfe not utf-8",
        b'{"id": "EV-1", "resource_type": "encrypt-resource"}',
        b'{"id": "EV-1", "resource_type": "plain", "resource": {}}',
    ],
)
def test_wechat_malformed_body_is_rejected_after_the_signature(config, wechat_key, body):
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    error = refused(ErrorCode.MALFORMED, wechatpay.verify_notification, config, headers, body, NOW)
    assert wechatpay.failure_reply(error).status == 400


def test_wechat_malformed_decrypted_resource_is_rejected(config, wechat_key):
    tx = transaction()
    tx["amount"] = {"total": "100.00", "currency": "CNY"}
    body = encrypted_body(tx)
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    refused(ErrorCode.AMOUNT_INVALID, wechatpay.verify_notification, config, headers, body, NOW)
    tx["amount"] = {"total": True, "currency": "CNY"}
    body = encrypted_body(tx)
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    refused(ErrorCode.AMOUNT_INVALID, wechatpay.verify_notification, config, headers, body, NOW)
    body = encrypted_body(transaction(trade_state="SOMETHING_NEW"))
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    refused(ErrorCode.MALFORMED, wechatpay.verify_notification, config, headers, body, NOW)


def test_wechat_refund_resource_is_not_a_payment(config, wechat_key):
    body = encrypted_body(transaction(), original_type="refund")
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    refused(ErrorCode.MALFORMED, wechatpay.verify_notification, config, headers, body, NOW)


def test_wechat_another_merchants_transaction_is_rejected(config, wechat_key):
    for tx in (transaction(mchid="1900000999"), transaction(appid="wx0000000000000000")):
        body = encrypted_body(tx)
        headers = signed_headers(wechat_key, PUB_KEY_ID, body)
        refused(
            ErrorCode.MERCHANT_MISMATCH, wechatpay.verify_notification, config, headers, body, NOW
        )


@pytest.mark.parametrize(
    "case", [str.lower, str.upper, lambda s: s.replace("Wechatpay", "WeChatPay")]
)
def test_wechat_header_names_in_any_case(config, wechat_key, case):
    body = encrypted_body(transaction())
    headers = {case(k): v for k, v in signed_headers(wechat_key, PUB_KEY_ID, body).items()}
    assert wechatpay.verify_notification(config, headers, body, NOW).total_fen == 10000


def test_wechat_missing_header_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    for name in (
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ):
        headers = signed_headers(wechat_key, PUB_KEY_ID, body)
        del headers[name]
        refused(
            ErrorCode.SIGNATURE_MISSING, wechatpay.verify_notification, config, headers, body, NOW
        )


def test_wechat_other_signature_type_is_rejected(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    refused(
        ErrorCode.SIGN_TYPE_UNSUPPORTED, wechatpay.verify_notification, config, headers, body, NOW
    )


def test_wechat_needs_an_aware_now(config, wechat_key):
    body = encrypted_body(transaction())
    headers = signed_headers(wechat_key, PUB_KEY_ID, body)
    with pytest.raises(ValueError):
        wechatpay.verify_notification(config, headers, body, NOW.replace(tzinfo=None))


def test_wechat_signing_message_matches_the_documented_example():
    # From WeChat Pay's "如何使用微信支付公钥验签" page: the 验签名串 of a response.
    message = wechatpay.signing_message(
        "1757488840",
        "e63973074d9d78aff8fb62277b5f95a0",
        b'{"data":[],"limit":20,"offset":0,"total_count":0}',
    )
    assert message == (
        b"1757488840\ne63973074d9d78aff8fb62277b5f95a0\n"
        b'{"data":[],"limit":20,"offset":0,"total_count":0}\n'
    )
    # An empty body (204) leaves the last line as a lone newline.
    assert wechatpay.signing_message("1", "n", b"") == b"1\nn\n\n"


def test_wechat_config_from_files(tmp_path, wechat_key, certificate_pem, cert_serial, cert_key):
    key_file = tmp_path / "pub_key.pem"
    key_file.write_bytes(
        wechat_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cert_file = tmp_path / "wechatpay_cert.pem"
    cert_file.write_bytes(certificate_pem)
    cfg = wechatpay.WechatPayConfig.from_files(
        mchid=MCHID,
        appid=APPID,
        apiv3_key=APIV3_KEY,
        public_keys={PUB_KEY_ID: key_file},
        certificates=[cert_file],
    )
    assert set(cfg.platform_keys) == {PUB_KEY_ID, cert_serial}
    assert load_certificate(certificate_pem)[0] == cert_serial
    body = encrypted_body(transaction())
    for key, serial in ((wechat_key, PUB_KEY_ID), (cert_key, cert_serial)):
        headers = signed_headers(key, serial, body)
        assert wechatpay.verify_notification(cfg, headers, body, NOW).total_fen == 10000
    # A certificate given as a public key is read for its key.
    from_cert = wechatpay.WechatPayConfig.from_files(
        mchid=MCHID, appid=APPID, apiv3_key=APIV3_KEY, public_keys={"X": cert_file}
    )
    headers = signed_headers(cert_key, "X", body)
    assert wechatpay.verify_notification(from_cert, headers, body, NOW).total_fen == 10000


def test_wechat_config_rejects_a_bad_apiv3_key(wechat_key):
    for bad in ("short", "x" * 33, "密" * 32):
        with pytest.raises(ValueError):
            wechatpay.WechatPayConfig(MCHID, APPID, bad, {PUB_KEY_ID: wechat_key.public_key()})
    cfg = wechatpay.WechatPayConfig(MCHID, APPID, APIV3_KEY, {PUB_KEY_ID: wechat_key.public_key()})
    assert APIV3_KEY not in repr(cfg)


def test_wechat_success_reply_is_204_empty():
    reply = wechatpay.success_reply()
    assert (reply.status, reply.body, reply.content_type) == (204, b"", None)


# ---------------------------------------------------------------- Alipay, built by hand

ALIPAY_APP_ID = "2021004112345678"
SELLER_ID = "2088102119685838"


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def alipay_config(alipay_key) -> alipay.AlipayConfig:
    der = alipay_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The 支付宝公钥 as the open-platform console shows it: bare base64, no PEM armour.
    return alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, base64.b64encode(der).decode())


def notify_params(**overrides) -> dict[str, str]:
    params = {
        "gmt_create": "2024-05-20 12:29:50",
        "charset": "utf-8",
        "seller_email": "shop@example.com",
        "subject": "一卡通充值",
        "buyer_id": "2088102116773037",
        "invoice_amount": "12.30",
        "notify_id": "2024052000222122958012341234567890",
        "fund_bill_list": '[{"amount":"12.30","fundChannel":"ALIPAYACCOUNT"}]',
        "notify_type": "trade_status_sync",
        "trade_status": "TRADE_SUCCESS",
        "receipt_amount": "12.30",
        "app_id": ALIPAY_APP_ID,
        "buyer_pay_amount": "12.30",
        "seller_id": SELLER_ID,
        "gmt_payment": "2024-05-20 12:29:58",
        "notify_time": "2024-05-20 12:29:59",
        "version": "1.0",
        "out_trade_no": "TU20240520000124",
        "total_amount": "12.30",
        "trade_no": "2024052022001412341234567890",
        "auth_app_id": ALIPAY_APP_ID,
        "point_amount": "0.00",
    }
    params.update(overrides)
    return params


def alipay_sign(
    key: rsa.RSAPrivateKey, params: dict[str, str], *, sign_type="RSA2", encoding="utf-8"
) -> dict[str, str]:
    """Sign as Alipay does: non-empty params but sign/sign_type, sorted, k=v joined by &."""
    content = "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k]
    )
    digest = hashes.SHA1() if sign_type == "RSA" else hashes.SHA256()
    signature = key.sign(content.encode(encoding), padding.PKCS1v15(), digest)
    return {**params, "sign_type": sign_type, "sign": base64.b64encode(signature).decode()}


def over_the_wire(form: dict[str, str]) -> dict[str, str]:
    """URL-encode the form as Alipay posts it and decode it as the HTTP layer will."""
    return dict(parse_qsl(urlencode(form), keep_blank_values=True))


# ---------------------------------------------------------------- Alipay


def test_alipay_valid_notify(alipay_config, alipay_key):
    form = over_the_wire(alipay_sign(alipay_key, notify_params()))
    n = alipay.verify_notify(alipay_config, form)
    assert n.out_trade_no == "TU20240520000124"
    assert n.trade_no == "2024052022001412341234567890"
    assert n.trade_status is alipay.TradeStatus.TRADE_SUCCESS
    assert n.total_fen == 1230
    assert n.notify_id == "2024052000222122958012341234567890"
    assert n.gmt_payment == datetime(2024, 5, 20, 4, 29, 58, tzinfo=UTC)
    assert n.app_id == ALIPAY_APP_ID
    assert n.seller_id == SELLER_ID
    assert n.raw["subject"] == "一卡通充值"
    assert alipay.credits(n)


def test_alipay_tampered_amount_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params())
    form["total_amount"] = "1230.00"
    error = refused(ErrorCode.SIGNATURE_INVALID, alipay.verify_notify, alipay_config, form)
    reply = alipay.failure_reply(error)
    assert reply.body == b"fail" and reply.status == 401


def test_alipay_signature_by_another_key_is_rejected(alipay_config, other_key):
    form = alipay_sign(other_key, notify_params())
    refused(ErrorCode.SIGNATURE_INVALID, alipay.verify_notify, alipay_config, form)


def test_alipay_sign_type_rsa_is_rejected(alipay_config, alipay_key):
    # A genuine SHA-1 "RSA" signature, and a SHA-256 one relabelled RSA: neither passes.
    sha1 = alipay_sign(alipay_key, notify_params(), sign_type="RSA")
    refused(ErrorCode.SIGN_TYPE_UNSUPPORTED, alipay.verify_notify, alipay_config, sha1)
    relabelled = {**alipay_sign(alipay_key, notify_params()), "sign_type": "RSA"}
    refused(ErrorCode.SIGN_TYPE_UNSUPPORTED, alipay.verify_notify, alipay_config, relabelled)
    missing = alipay_sign(alipay_key, notify_params())
    del missing["sign_type"]
    refused(ErrorCode.SIGN_TYPE_UNSUPPORTED, alipay.verify_notify, alipay_config, missing)


def test_alipay_missing_sign_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params())
    del form["sign"]
    refused(ErrorCode.SIGNATURE_MISSING, alipay.verify_notify, alipay_config, form)


def test_alipay_empty_values_are_not_signed(alipay_config, alipay_key):
    params = notify_params(body="", passback_params="")
    content = alipay.signed_content({**params, "sign": "x", "sign_type": "RSA2"})
    assert "body=" not in content and "passback_params" not in content
    assert "sign=" not in content and "sign_type" not in content
    form = over_the_wire(alipay_sign(alipay_key, params))
    assert form["body"] == ""
    assert alipay.verify_notify(alipay_config, form).total_fen == 1230
    # Had the empty values been part of the content, this signature would not match.
    with_empties = "&".join(f"{k}={params[k]}" for k in sorted(params))
    signature = alipay_key.sign(with_empties.encode(), padding.PKCS1v15(), hashes.SHA256())
    form = {**params, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}
    refused(ErrorCode.SIGNATURE_INVALID, alipay.verify_notify, alipay_config, form)


def test_alipay_signed_content_matches_the_documented_example():
    # Alipay's 异步通知验签 example (open platform docs). The docs' example notification also
    # carries gmt_create=2016-07-19 14:10:44, which their 待验签字符串 omits (a slip in the docs:
    # every non-empty parameter is signed), so it is left out here to compare byte for byte.
    query = (
        "total_amount=2.00&buyer_id=2088102116773037&body=大乐透2.1"
        "&trade_no=2016071921001003030200089909&refund_fee=0.00&notify_time=2016-07-19 14:10:49"
        "&subject=大乐透2.1&sign_type=RSA2&charset=utf-8&notify_type=trade_status_sync"
        "&out_trade_no=0719141034-6418&gmt_close=2016-07-19 14:10:46"
        "&gmt_payment=2016-07-19 14:10:47&trade_status=TRADE_SUCCESS&version=1.0"
        "&sign=kPbQIjX+xQc8F0/A6/AocELIjhhZnGbcBN6G4MM/HmfWL4ZiHM6fWl5NQhzXJusaklZ1LFuMo+lHQU"
        "&app_id=2015102700040153&seller_id=2088102119685838"
        "&notify_id=4a91b7a78a503640467525113fb7d8bg8e"
    )
    form = dict(pair.split("=", 1) for pair in query.split("&"))
    assert alipay.signed_content(form) == (
        "app_id=2015102700040153&body=大乐透2.1&buyer_id=2088102116773037&charset=utf-8"
        "&gmt_close=2016-07-19 14:10:46&gmt_payment=2016-07-19 14:10:47"
        "&notify_id=4a91b7a78a503640467525113fb7d8bg8e&notify_time=2016-07-19 14:10:49"
        "&notify_type=trade_status_sync&out_trade_no=0719141034-6418&refund_fee=0.00"
        "&seller_id=2088102119685838&subject=大乐透2.1&total_amount=2.00"
        "&trade_no=2016071921001003030200089909&trade_status=TRADE_SUCCESS&version=1.0"
    )


def test_alipay_wrong_app_id_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params(app_id="2021009999999999"))
    error = refused(ErrorCode.MERCHANT_MISMATCH, alipay.verify_notify, alipay_config, form)
    assert alipay.failure_reply(error).status == 400


def test_alipay_wrong_seller_is_rejected_when_configured(alipay_config, alipay_key):
    strict = alipay.AlipayConfig(ALIPAY_APP_ID, alipay_config.public_key, seller_id=SELLER_ID)
    assert alipay.verify_notify(strict, alipay_sign(alipay_key, notify_params())).seller_id
    form = alipay_sign(alipay_key, notify_params(seller_id="2088000000000000"))
    refused(ErrorCode.MERCHANT_MISMATCH, alipay.verify_notify, strict, form)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0.01", 1),
        ("100", 10000),
        ("100.5", 10050),
        ("12.30", 1230),
        ("0.10", 10),
        ("0", 0),
        ("99999999.99", 9999999999),
    ],
)
def test_alipay_yuan_to_fen(text, fen):
    assert alipay.parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "-1",
        "1.234",
        "",
        " 1",
        "1 ",
        "1.",
        ".5",
        "+1",
        "1,00",
        "0x10",
        "01",
        "１",
        "NaN",
        "1_0",
    ],
)
def test_alipay_yuan_rejects(text):
    refused(ErrorCode.AMOUNT_INVALID, alipay.parse_yuan, text)


def test_alipay_bad_amount_in_a_signed_notify_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params(total_amount="1e3"))
    refused(ErrorCode.AMOUNT_INVALID, alipay.verify_notify, alipay_config, form)


@pytest.mark.parametrize(
    ("status", "credited"),
    [
        ("TRADE_SUCCESS", True),
        ("TRADE_FINISHED", True),
        ("WAIT_BUYER_PAY", False),
        ("TRADE_CLOSED", False),
    ],
)
def test_alipay_only_success_and_finished_credit(alipay_config, alipay_key, status, credited):
    params = notify_params(trade_status=status)
    if status == "WAIT_BUYER_PAY":
        del params["gmt_payment"]
    n = alipay.verify_notify(alipay_config, alipay_sign(alipay_key, params))
    assert n.trade_status == status
    assert alipay.credits(n) is credited


def test_alipay_unknown_trade_status_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params(trade_status="TRADE_PENDING"))
    refused(ErrorCode.MALFORMED, alipay.verify_notify, alipay_config, form)


def test_alipay_gbk_charset_is_verified_in_gbk(alipay_config, alipay_key):
    params = notify_params(charset="GBK")
    form = alipay_sign(alipay_key, params, encoding="gbk")
    assert alipay.verify_notify(alipay_config, form).raw["subject"] == "一卡通充值"
    # The same bytes read as UTF-8 would not verify: the charset really is used.
    form_utf8 = alipay_sign(alipay_key, params, encoding="utf-8")
    refused(ErrorCode.SIGNATURE_INVALID, alipay.verify_notify, alipay_config, form_utf8)


def test_alipay_unknown_charset_is_rejected(alipay_config, alipay_key):
    form = alipay_sign(alipay_key, notify_params(charset="big5"))
    refused(ErrorCode.MALFORMED, alipay.verify_notify, alipay_config, form)


def test_alipay_public_key_in_every_shape(tmp_path, alipay_key):
    public = alipay_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Alipay public key cert (test)")])
    cert_pem = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(alipay_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    key_file = tmp_path / "alipay_public_key.pem"
    key_file.write_bytes(pem)
    body = "\n".join(pem.decode().strip().splitlines()[1:-1])  # wrapped base64, no armour
    configs = [
        alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, pem.decode()),
        alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, pem),
        alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, body),
        alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, cert_pem),
        alipay.AlipayConfig.from_file(ALIPAY_APP_ID, key_file),
    ]
    form = alipay_sign(alipay_key, notify_params())
    for cfg in configs:
        assert alipay.verify_notify(cfg, form).total_fen == 1230
    with pytest.raises(ValueError):
        alipay.AlipayConfig.from_pem(ALIPAY_APP_ID, "not a key")


def test_alipay_success_reply_is_plain_success():
    reply = alipay.success_reply()
    assert (reply.status, reply.body) == (200, b"success")
    assert reply.content_type is not None and reply.content_type.startswith("text/plain")
