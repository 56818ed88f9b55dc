"""Alipay APP payment (alipay.trade.app.pay): the signed order string the app hands to the SDK.

No call to Alipay: the server signs the request and the Alipay SDK in the app sends it
(`payOrder:orderString` on iOS, `PayTask.payV2(orderString)` on Android). The order string is
the application/x-www-form-urlencoded form of the common parameters:

    app_id, method=alipay.trade.app.pay, format=JSON, charset=utf-8, sign_type=RSA2,
    timestamp ("yyyy-MM-dd HH:mm:ss", Beijing time), version=1.0, notify_url, biz_content, sign

where biz_content is JSON {out_trade_no, total_amount (yuan, two decimals), subject,
product_code=QUICK_MSECURITY_PAY, time_expire ("yyyy-MM-dd HH:mm:ss", Beijing time)}.

Signing a request (请求签名, public-key mode) differs from verifying a notification in one place:
every parameter but `sign` is signed, `sign_type` included. Empty values are left out, the rest
sorted by name in ASCII order and joined as `k1=v1&k2=v2` with the raw (not URL-encoded) values;
`sign` is base64 SHA256withRSA over that string in UTF-8 with OUR application private key
(应用私钥), which Alipay checks with the application public key uploaded to its console.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from domain.channels import signing
from domain.channels.alipay import BEIJING, SIGN_TYPE, AlipayConfig

METHOD = "alipay.trade.app.pay"
PRODUCT_CODE = "QUICK_MSECURITY_PAY"
VERSION = "1.0"
CHARSET = "utf-8"
FORMAT = "JSON"
SUBJECT_MAX = 256
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class AlipayOrdering:
    """What signing orders needs beyond the notification settings: our application private key
    and the notify_url Alipay will POST to."""

    app_private_key: RSAPrivateKey = field(repr=False)
    notify_url: str

    def __post_init__(self) -> None:
        if not self.notify_url.startswith(("https://", "http://")):
            raise ValueError("notify_url must be an http(s) URL")


@dataclass(frozen=True)
class AlipayMerchantConfig(AlipayConfig):
    """The Alipay application: the notification settings, and `ordering` when orders can be
    signed (without it, notifications of earlier top-ups still verify, but no new ones start)."""

    ordering: AlipayOrdering | None = None


def yuan(fen: int) -> str:
    """Integer fen as Alipay's yuan amount with two decimals: 1230 -> "12.30"."""
    if isinstance(fen, bool) or fen <= 0:
        raise ValueError("the amount must be a positive number of fen")
    return f"{fen // 100}.{fen % 100:02d}"


def beijing_time(at: datetime) -> str:
    """`2024-05-20 12:30:00`: Alipay's time format, Beijing time without an offset."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(BEIJING).strftime(_TIME_FORMAT)


def sign_content(params: Mapping[str, str]) -> str:
    """The 待签名字符串 of a request: non-empty parameters but `sign`, sorted, `k=v` joined by `&`
    (`sign_type` is signed, unlike in a notification)."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "")


def app_order_params(
    config: AlipayConfig,
    ordering: AlipayOrdering,
    *,
    out_trade_no: str,
    subject: str,
    total_fen: int,
    time_expire: datetime,
    now: datetime,
) -> dict[str, str]:
    """The signed parameters of the order, `sign` included."""
    if not 0 < len(out_trade_no) <= 64:
        raise ValueError("out_trade_no must be 1-64 characters")
    if not 0 < len(subject) <= SUBJECT_MAX:
        raise ValueError(f"subject must be 1-{SUBJECT_MAX} characters")
    biz_content = {
        "out_trade_no": out_trade_no,
        "total_amount": yuan(total_fen),
        "subject": subject,
        "product_code": PRODUCT_CODE,
        "time_expire": beijing_time(time_expire),
    }
    params = {
        "app_id": config.app_id,
        "method": METHOD,
        "format": FORMAT,
        "charset": CHARSET,
        "sign_type": SIGN_TYPE,
        "timestamp": beijing_time(now),
        "version": VERSION,
        "notify_url": ordering.notify_url,
        "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
    }
    message = sign_content(params).encode(CHARSET)
    params["sign"] = signing.sign_sha256_rsa(ordering.app_private_key, message)
    return params


def app_order_string(
    config: AlipayConfig,
    ordering: AlipayOrdering,
    *,
    out_trade_no: str,
    subject: str,
    total_fen: int,
    time_expire: datetime,
    now: datetime,
) -> str:
    """The order string (orderStr) for the Alipay SDK: the signed parameters URL-encoded in
    UTF-8, as the server SDKs' sdkExecute returns it."""
    params = app_order_params(
        config,
        ordering,
        out_trade_no=out_trade_no,
        subject=subject,
        total_fen=total_fen,
        time_expire=time_expire,
        now=now,
    )
    return urlencode(sorted(params.items()), encoding=CHARSET)
