"""WeChat Pay API v3 payment notifications (微信支付 APIv3 支付结果通知).

WeChat POSTs a JSON envelope whose `resource` is the transaction encrypted with our APIv3 key
(AEAD_AES_256_GCM), and signs the request with its platform private key:

    Wechatpay-Timestamp: 1554209980            应答时间戳 (unix seconds)
    Wechatpay-Nonce: c5ac7061fccab6bf...       应答随机串
    Wechatpay-Signature: <base64>              SHA256withRSA over the 验签名串 below
    Wechatpay-Serial: PUB_KEY_ID_0114... or 5157F09EFDC0...   微信支付公钥ID or 平台证书序列号

The 验签名串 is three lines, each ending in "\\n": timestamp, nonce, and the exact body bytes.
Only after the signature holds do we parse and decrypt. This module covers direct merchants
(直连商户: `mchid`/`appid` in the transaction), not service providers (服务商: sp_mchid/sub_mchid).

The caller must be idempotent: WeChat repeats a notification until it gets 200/204, and may
deliver the same one twice even after that.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.channels import keys
from domain.channels.errors import ChannelError, ErrorCode, HttpReply

# WeChat's own SDKs reject notifications whose timestamp is more than five minutes off.
TIMESTAMP_WINDOW_SECONDS = 300
# 签名探测流量: WeChat sends a few deliberately bad signatures with this prefix; a merchant that
# accepts them does not verify signatures. They must fail like any other bad signature.
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
_GCM_TAG_BYTES = 16


class TradeState(StrEnum):
    """交易状态 (trade_state). Only SUCCESS means the money arrived."""

    SUCCESS = "SUCCESS"  # 支付成功
    REFUND = "REFUND"  # 转入退款
    NOTPAY = "NOTPAY"  # 未支付
    CLOSED = "CLOSED"  # 已关闭
    REVOKED = "REVOKED"  # 已撤销 (付款码支付)
    USERPAYING = "USERPAYING"  # 用户支付中 (付款码支付)
    PAYERROR = "PAYERROR"  # 支付失败


def _normalise_serial(serial: str) -> str:
    # Certificate serials are hex, written upper-case by WeChat but often pasted lower-case.
    return serial.strip().upper()


@dataclass(frozen=True)
class WechatPayConfig:
    """One direct merchant: 商户号, the AppID payments are made under, APIv3 密钥, and
    WeChat's public keys by the serial that `Wechatpay-Serial` names them with (a 微信支付公钥ID
    `PUB_KEY_ID_...` or a 平台证书序列号; keep old and new side by side while rotating)."""

    mchid: str
    appid: str
    apiv3_key: str = field(repr=False)
    platform_keys: Mapping[str, RSAPublicKey]

    def __post_init__(self) -> None:
        # AES-256 needs 32 bytes; WeChat's APIv3 key is 32 ASCII characters used as-is.
        if len(self.apiv3_key) != 32 or not self.apiv3_key.isascii():
            raise ValueError("the APIv3 key must be exactly 32 ASCII characters")
        if not self.platform_keys:
            raise ValueError("at least one WeChat Pay public key is needed")
        normalised = {_normalise_serial(s): k for s, k in self.platform_keys.items()}
        object.__setattr__(self, "platform_keys", MappingProxyType(normalised))

    @classmethod
    def from_files(
        cls,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        public_keys: Mapping[str, str | os.PathLike[str]] | None = None,
        certificates: Iterable[str | os.PathLike[str]] = (),
    ) -> WechatPayConfig:
        """`public_keys` maps a 微信支付公钥ID to its PEM file (a certificate PEM is accepted
        too); each file in `certificates` is a 平台证书 whose serial is read from it."""
        found: dict[str, RSAPublicKey] = {}
        for serial, path in (public_keys or {}).items():
            found[serial] = keys.load_public_key_file(path)
        for path in certificates:
            with open(path, "rb") as f:
                serial, key = keys.load_certificate(f.read())
            found[serial] = key
        return cls(mchid=mchid, appid=appid, apiv3_key=apiv3_key, platform_keys=found)


@dataclass(frozen=True, slots=True)
class WechatPayNotification:
    """An authenticated, decrypted payment notification (支付成功通知)."""

    notification_id: str  # the envelope's `id` (通知ID), not the transaction's
    event_type: str  # e.g. TRANSACTION.SUCCESS
    create_time: str
    summary: str
    out_trade_no: str  # 商户订单号: ours
    transaction_id: str  # 微信支付订单号
    trade_state: TradeState
    total_fen: int  # amount.total: the order amount in fen (分)
    currency: str  # amount.currency, CNY for domestic merchants
    mchid: str
    appid: str
    success_time: datetime | None  # 支付完成时间, only when the payment succeeded
    payer_openid: str | None
    raw: dict[str, Any] = field(repr=False)  # the whole decrypted transaction


def credits(notification: WechatPayNotification) -> bool:
    """Whether this notification means the money arrived and the top-up may be credited."""
    return notification.trade_state is TradeState.SUCCESS


def signing_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The 验签名串: timestamp, nonce and body, each followed by a newline."""
    return b"".join((timestamp.encode(), b"\n", nonce.encode(), b"\n", body, b"\n"))


def verify_notification(
    config: WechatPayConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> WechatPayNotification:
    """Authenticate, decrypt and parse one notification; raise `ChannelError` otherwise.

    `body` must be the exact bytes received: any re-serialisation breaks the signature.
    `now` must be timezone-aware (it is compared with a unix timestamp).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    h = _lower_keys(headers)
    timestamp = h.get("wechatpay-timestamp")
    nonce = h.get("wechatpay-nonce")
    signature = h.get("wechatpay-signature")
    serial = h.get("wechatpay-serial")
    if not (timestamp and nonce and signature and serial):
        raise ChannelError(ErrorCode.SIGNATURE_MISSING, "missing Wechatpay-* signature headers")
    signature_type = h.get("wechatpay-signature-type")
    if signature_type is not None and signature_type != SIGNATURE_TYPE:
        raise ChannelError(
            ErrorCode.SIGN_TYPE_UNSUPPORTED, f"unsupported signature type {signature_type[:40]}"
        )
    if signature.startswith(PROBE_PREFIX):
        raise ChannelError(ErrorCode.SIGNATURE_PROBE, "signature verification failed")
    key = config.platform_keys.get(_normalise_serial(serial))
    if key is None:
        raise ChannelError(ErrorCode.UNKNOWN_SERIAL, f"unknown Wechatpay-Serial {serial[:64]}")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise ChannelError(ErrorCode.MALFORMED, "Wechatpay-Timestamp is not a unix timestamp")
    if abs(now.timestamp() - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
        raise ChannelError(ErrorCode.TIMESTAMP_OUT_OF_WINDOW, "Wechatpay-Timestamp is too far off")
    if not keys.verify_sha256_rsa(key, signing_message(timestamp, nonce, body), signature):
        raise ChannelError(ErrorCode.SIGNATURE_INVALID, "signature verification failed")

    envelope = _json_object(body, "notification body")
    if envelope.get("resource_type") != "encrypt-resource":
        raise ChannelError(ErrorCode.MALFORMED, "resource_type is not encrypt-resource")
    resource = envelope.get("resource")
    if not isinstance(resource, dict):
        raise ChannelError(ErrorCode.MALFORMED, "resource is missing")
    original_type = resource.get("original_type", "transaction")
    if original_type != "transaction":
        # Refund and other notifications have other fields; they belong to another handler.
        raise ChannelError(ErrorCode.MALFORMED, f"not a payment notification: {original_type}")
    transaction = _json_object(decrypt_resource(config.apiv3_key, resource), "resource")
    return _parse(config, envelope, transaction)


def decrypt_resource(apiv3_key: str, resource: Mapping[str, Any]) -> bytes:
    """Decrypt a `resource` object (回调报文解密): AES-256-GCM with the APIv3 key, the resource's
    `nonce` as IV and `associated_data` as AAD; `ciphertext` is base64 of ciphertext || tag."""
    if resource.get("algorithm") != ALGORITHM:
        raise ChannelError(ErrorCode.MALFORMED, f"resource algorithm is not {ALGORITHM}")
    ciphertext_b64 = resource.get("ciphertext")
    nonce = resource.get("nonce")
    associated_data = resource.get("associated_data") or ""
    if not (
        isinstance(ciphertext_b64, str)
        and isinstance(nonce, str)
        and isinstance(associated_data, str)
    ):
        raise ChannelError(ErrorCode.MALFORMED, "resource lacks ciphertext or nonce")
    try:
        ciphertext = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ChannelError(ErrorCode.MALFORMED, "resource ciphertext is not base64") from e
    if len(ciphertext) <= _GCM_TAG_BYTES:
        raise ChannelError(ErrorCode.MALFORMED, "resource ciphertext is too short")
    try:
        return AESGCM(apiv3_key.encode("ascii")).decrypt(
            nonce.encode(), ciphertext, associated_data.encode()
        )
    except (InvalidTag, ValueError) as e:
        # The signature held, so WeChat sent this: our APIv3 key must be wrong (or stale).
        raise ChannelError(ErrorCode.DECRYPT_FAILED, "could not decrypt the resource") from e


def success_reply() -> HttpReply:
    """接收成功: 204 with no body (WeChat accepts 200 too)."""
    return HttpReply(204, b"", None)


def failure_reply(error: ChannelError) -> HttpReply:
    """接收失败: 4xx/5xx with {"code": "FAIL", "message": ...}; WeChat will retry."""
    body = json.dumps({"code": "FAIL", "message": error.message}, ensure_ascii=False)
    return HttpReply(error.http_status, body.encode(), "application/json; charset=utf-8")


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in lowered and lowered[key] != value:
            raise ChannelError(ErrorCode.MALFORMED, f"conflicting {name} headers")
        lowered[key] = value
    return lowered


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ChannelError(ErrorCode.MALFORMED, f"{what} is not JSON") from e
    if not isinstance(value, dict):
        raise ChannelError(ErrorCode.MALFORMED, f"{what} is not a JSON object")
    return value


def _text(obj: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ChannelError(ErrorCode.MALFORMED, f"{name} is missing or not a string")
    return value


def _parse(
    config: WechatPayConfig, envelope: dict[str, Any], transaction: dict[str, Any]
) -> WechatPayNotification:
    try:
        trade_state = TradeState(_text(transaction, "trade_state"))
    except ValueError as e:
        raise ChannelError(ErrorCode.MALFORMED, "unknown trade_state") from e
    amount = transaction.get("amount")
    if not isinstance(amount, dict):
        raise ChannelError(ErrorCode.MALFORMED, "amount is missing")
    total = amount.get("total")
    # bool is an int in Python; a JSON true must not become 1 fen.
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ChannelError(ErrorCode.AMOUNT_INVALID, "amount.total is not a whole number of fen")
    mchid = _text(transaction, "mchid")
    appid = _text(transaction, "appid")
    if mchid != config.mchid or appid != config.appid:
        raise ChannelError(ErrorCode.MERCHANT_MISMATCH, "mchid or appid is not ours")
    success_time = None
    if raw_time := _text(transaction, "success_time", required=False):
        try:
            success_time = datetime.fromisoformat(raw_time)
        except ValueError as e:
            raise ChannelError(ErrorCode.MALFORMED, "success_time is not RFC 3339") from e
        if success_time.tzinfo is None:
            raise ChannelError(ErrorCode.MALFORMED, "success_time has no time zone")
    payer = transaction.get("payer")
    openid = payer.get("openid") if isinstance(payer, dict) else None
    return WechatPayNotification(
        notification_id=_text(envelope, "id"),
        event_type=_text(envelope, "event_type"),
        create_time=_text(envelope, "create_time", required=False),
        summary=_text(envelope, "summary", required=False),
        out_trade_no=_text(transaction, "out_trade_no"),
        transaction_id=_text(transaction, "transaction_id"),
        trade_state=trade_state,
        total_fen=total,
        currency=_text(amount, "currency"),
        mchid=mchid,
        appid=appid,
        success_time=success_time,
        payer_openid=openid if isinstance(openid, str) and openid else None,
        raw=transaction,
    )
