"""Alipay asynchronous notifications (支付宝异步通知), RSA2 public-key mode.

Alipay POSTs an application/x-www-form-urlencoded form to the notify_url and signs it:

1. take every parameter except `sign` and `sign_type` (除去 sign、sign_type 两个参数外);
2. drop those whose value is empty (the signer skips them, so they were never signed);
3. sort by name in ASCII order and join as `k1=v1&k2=v2` with the URL-decoded values: this
   is the 待验签字符串;
4. `sign` is base64 of RSASSA-PKCS1-v1_5 / SHA-256 over that string, encoded in the
   notification's `charset` (UTF-8 unless it says GBK), with Alipay's public key (支付宝公钥,
   not our application key).

Charset: the HTTP layer must percent-decode the body with the same charset Alipay used, which
is the `charset` parameter it sends (utf-8 for every application created today; older ones
may still say GBK). This module then re-encodes the 待验签字符串 in that charset before
verifying, as Alipay's SDKs do; an unknown charset is refused rather than guessed.

Alipay retries until it reads the plain text `success`; the caller must be idempotent, and note
that one trade can notify TRADE_SUCCESS and later TRADE_FINISHED: credit it only once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from domain.channels import keys
from domain.channels.errors import ChannelError, ErrorCode, HttpReply

SIGN_TYPE = "RSA2"
_UNSIGNED = frozenset({"sign", "sign_type"})
# Python codec for each charset Alipay may name. GB2312 text is byte-identical in GBK, and
# Alipay's Java side treats them alike, so GBK's wider repertoire is the safer reading.
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk", "gb18030": "gb18030"}
# Yuan with at most two decimals, ASCII digits only: no sign, exponent, blanks or "1." forms.
_YUAN = re.compile(r"(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?", re.ASCII)
# Alipay writes its gmt_* times in Beijing time without an offset.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TradeStatus(StrEnum):
    """交易状态 (trade_status)."""

    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"  # 交易创建，等待买家付款
    TRADE_CLOSED = "TRADE_CLOSED"  # 未付款交易超时关闭，或支付完成后全额退款
    TRADE_SUCCESS = "TRADE_SUCCESS"  # 交易支付成功 (still refundable)
    TRADE_FINISHED = "TRADE_FINISHED"  # 交易结束，不可退款


@dataclass(frozen=True)
class AlipayConfig:
    """Our application's APPID, Alipay's public key (支付宝公钥) and, optionally, the seller
    (收款支付宝账号 PID, 2088...) whose notifications alone we accept."""

    app_id: str
    public_key: RSAPublicKey = field(repr=False)
    seller_id: str | None = None

    @classmethod
    def from_pem(
        cls, app_id: str, public_key: str | bytes, seller_id: str | None = None
    ) -> AlipayConfig:
        """`public_key`: a PEM key, a certificate PEM, or the bare base64 the console shows."""
        return cls(app_id, keys.load_public_key(public_key), seller_id)

    @classmethod
    def from_file(
        cls, app_id: str, path: str | os.PathLike[str], seller_id: str | None = None
    ) -> AlipayConfig:
        return cls(app_id, keys.load_public_key_file(path), seller_id)


@dataclass(frozen=True, slots=True)
class AlipayNotify:
    """An authenticated trade notification."""

    notify_id: str  # 通知校验ID
    app_id: str
    out_trade_no: str  # 商户订单号: ours
    trade_no: str  # 支付宝交易号
    trade_status: TradeStatus
    total_fen: int  # total_amount (订单金额, yuan) in fen
    gmt_payment: datetime | None  # 交易付款时间, Beijing time; absent before payment
    seller_id: str | None
    raw: dict[str, str] = field(repr=False)  # every parameter received, sign included


def credits(notify: AlipayNotify) -> bool:
    """Whether the money arrived: TRADE_SUCCESS or TRADE_FINISHED. One trade may send both;
    the caller credits the top-up on the first and treats the second as a duplicate."""
    return notify.trade_status in (TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_FINISHED)


def signed_content(form: Mapping[str, str]) -> str:
    """The 待验签字符串: non-empty parameters but sign/sign_type, sorted, `k=v` joined by `&`."""
    items = sorted((k, v) for k, v in form.items() if k not in _UNSIGNED and v != "")
    return "&".join(f"{k}={v}" for k, v in items)


def parse_yuan(text: str) -> int:
    """An Alipay amount in yuan ("12.30") as integer fen (1230), exactly: no floats."""
    match = _YUAN.fullmatch(text)
    if match is None:
        raise ChannelError(ErrorCode.AMOUNT_INVALID, f"not a yuan amount: {text[:32]!r}")
    whole, decimals = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(decimals.ljust(2, "0"))


def verify_notify(config: AlipayConfig, form: Mapping[str, str]) -> AlipayNotify:
    """Authenticate and parse one notification (already URL-decoded); raise `ChannelError`."""
    sign = form.get("sign", "")
    if not sign:
        raise ChannelError(ErrorCode.SIGNATURE_MISSING, "sign is missing")
    sign_type = form.get("sign_type", "")
    if sign_type != SIGN_TYPE:
        # RSA (SHA-1) is deprecated by Alipay; accepting it would let a downgrade through.
        raise ChannelError(ErrorCode.SIGN_TYPE_UNSUPPORTED, f"sign_type must be {SIGN_TYPE}")
    charset = form.get("charset") or "utf-8"
    codec = _CHARSETS.get(charset.lower())
    if codec is None:
        raise ChannelError(ErrorCode.MALFORMED, f"unsupported charset {charset[:32]}")
    try:
        content = signed_content(form).encode(codec)
    except UnicodeEncodeError as e:
        raise ChannelError(ErrorCode.MALFORMED, f"parameters are not {charset}") from e
    if not keys.verify_sha256_rsa(config.public_key, content, sign):
        raise ChannelError(ErrorCode.SIGNATURE_INVALID, "signature verification failed")

    if form.get("app_id") != config.app_id:
        raise ChannelError(ErrorCode.MERCHANT_MISMATCH, "app_id is not ours")
    seller_id = form.get("seller_id") or None
    if config.seller_id is not None and seller_id != config.seller_id:
        raise ChannelError(ErrorCode.MERCHANT_MISMATCH, "seller_id is not ours")
    try:
        trade_status = TradeStatus(_required(form, "trade_status"))
    except ValueError as e:
        raise ChannelError(ErrorCode.MALFORMED, "unknown trade_status") from e
    gmt_payment = None
    if raw_time := form.get("gmt_payment"):
        try:
            gmt_payment = datetime.strptime(raw_time, _TIME_FORMAT).replace(tzinfo=BEIJING)
        except ValueError as e:
            raise ChannelError(ErrorCode.MALFORMED, "gmt_payment is not a time") from e
    return AlipayNotify(
        notify_id=_required(form, "notify_id"),
        app_id=config.app_id,
        out_trade_no=_required(form, "out_trade_no"),
        trade_no=_required(form, "trade_no"),
        trade_status=trade_status,
        total_fen=parse_yuan(_required(form, "total_amount")),
        gmt_payment=gmt_payment,
        seller_id=seller_id,
        raw=dict(form),
    )


def success_reply() -> HttpReply:
    """The only answer that stops Alipay's retries: the seven characters `success`."""
    return HttpReply(200, b"success", "text/plain; charset=utf-8")


def failure_reply(error: ChannelError) -> HttpReply:
    """Anything but `success` makes Alipay retry; `fail` is the conventional word."""
    return HttpReply(error.http_status, b"fail", "text/plain; charset=utf-8")


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise ChannelError(ErrorCode.MALFORMED, f"{name} is missing")
    return value
