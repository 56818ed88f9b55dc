"""WeChat Pay API v3 APP orders (APP下单) and what the app pays with (APP调起支付).

1. We POST the order to `{api_base}/v3/pay/transactions/app` as JSON:

       {"appid", "mchid", "description", "out_trade_no", "time_expire", "notify_url",
        "amount": {"total": <fen>, "currency": "CNY"}}

   signed with our merchant API private key (商户API私钥) in the Authorization header:

       WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"

   `signature` is base64 SHA256withRSA over the 签名串: five lines, each ending in "\\n": the
   HTTP method, the URL path with its query (no scheme or host), the unix timestamp, the
   nonce and the exact body bytes. `serial_no` is our merchant API certificate's serial.

2. WeChat answers 200 `{"prepay_id": "wx…"}`, signed like its notifications (Wechatpay-Timestamp,
   -Nonce, -Signature, -Serial over timestamp, nonce and body with its platform key): the
   prepay_id is trusted only once that signature holds. Errors are 4xx/5xx with
   `{"code": "PARAM_ERROR", "message": "…"}` and are not signed reliably, so they are only
   reported, never acted on.

3. The app calls the OpenSDK's PayReq with appid, partnerid (our mchid), prepayid, package
   `Sign=WXPay`, noncestr, timestamp and sign: base64 SHA256withRSA with the merchant key over
   four lines "appid\\ntimestamp\\nnoncestr\\nprepayid\\n".

Placing the same order again (same out_trade_no, same parameters) while it is unpaid is allowed
and returns the order's current prepay_id (valid two hours); `time_expire` cannot change after
the first call, so a retry must send exactly what the first call sent. Direct merchants
(直连商户) only.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from domain.channels import keys, signing, wechatpay
from domain.channels.wechatpay import WechatPayConfig

DEFAULT_API_BASE = "https://api.mch.weixin.qq.com"
APP_ORDER_PATH = "/v3/pay/transactions/app"
APP_PACKAGE = "Sign=WXPay"
CURRENCY = "CNY"
USER_AGENT = "yikatong/0.1 (WeChat Pay API v3)"  # WeChat requires a User-Agent
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
# 商户订单号: 6-32 characters of digits, letters and _-|*
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}", re.ASCII)
DESCRIPTION_MAX = 127
PREPAY_ID_MAX = 64


@dataclass(frozen=True)
class WechatPayOrdering:
    """What placing orders needs beyond the notification settings: our merchant API private
    key and its certificate serial (商户API证书序列号), the notify_url WeChat will POST to,
    and where the API is (a local fake in tests)."""

    merchant_private_key: RSAPrivateKey = field(repr=False)
    merchant_serial: str
    notify_url: str
    api_base: str = DEFAULT_API_BASE
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        serial = self.merchant_serial.strip().upper()
        if not serial:
            raise ValueError("the merchant API certificate serial is empty")
        if not self.notify_url.startswith("https://") or "?" in self.notify_url:
            # WeChat refuses other notify_urls: HTTPS, and no query string.
            raise ValueError("notify_url must be an https:// URL without a query")
        base = self.api_base.rstrip("/")
        if not base.startswith(("https://", "http://")):
            raise ValueError("the WeChat Pay API base must be an http(s) URL")
        object.__setattr__(self, "merchant_serial", serial)
        object.__setattr__(self, "api_base", base)


@dataclass(frozen=True)
class WechatPayMerchantConfig(WechatPayConfig):
    """The WeChat Pay merchant: the notification settings, and `ordering` when orders can be
    placed (without it, notifications of earlier top-ups still verify, but no new ones start)."""

    ordering: WechatPayOrdering | None = None


class OrderError(Exception):
    """The order could not be placed. `reason` is NETWORK, REJECTED (WeChat answered an error;
    `provider_code` is its code), SIGNATURE_INVALID or MALFORMED (an answer we cannot trust)."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status
        self.provider_code = provider_code
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class AppOrder:
    out_trade_no: str
    description: str
    total_fen: int
    time_expire: datetime  # timezone-aware; sent in Beijing time to the second


@dataclass(frozen=True, slots=True)
class AppPayParams:
    """The OpenSDK PayReq fields (APP调起支付), as WeChat names them."""

    appid: str
    partnerid: str
    prepayid: str
    package: str
    noncestr: str
    timestamp: str
    sign: str


def nonce() -> str:
    """32 random upper-case hex characters (随机字符串, at most 32)."""
    return secrets.token_hex(16).upper()


def rfc3339_beijing(at: datetime) -> str:
    """`2015-05-20T13:29:35+08:00`: WeChat's time_expire format, whole seconds."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(BEIJING).replace(microsecond=0).isoformat()


def order_body(config: WechatPayConfig, ordering: WechatPayOrdering, order: AppOrder) -> bytes:
    """The exact JSON bytes of the order; the same order always gives the same bytes."""
    if not _OUT_TRADE_NO.fullmatch(order.out_trade_no):
        raise ValueError("out_trade_no must be 6-32 of 0-9 A-Z a-z _ - | *")
    if not 0 < len(order.description) <= DESCRIPTION_MAX:
        raise ValueError(f"description must be 1-{DESCRIPTION_MAX} characters")
    if isinstance(order.total_fen, bool) or order.total_fen <= 0:
        raise ValueError("the amount must be a positive number of fen")
    body = {
        "appid": config.appid,
        "mchid": config.mchid,
        "description": order.description,
        "out_trade_no": order.out_trade_no,
        "time_expire": rfc3339_beijing(order.time_expire),
        "notify_url": ordering.notify_url,
        "amount": {"total": order.total_fen, "currency": CURRENCY},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def request_signing_message(
    method: str, path_and_query: str, timestamp: str, nonce_str: str, body: bytes
) -> bytes:
    """The 签名串 of a request: method, URL path (with query), timestamp, nonce, body; each
    line ends in a newline, the last one included (an empty body leaves an empty line)."""
    head = f"{method}\n{path_and_query}\n{timestamp}\n{nonce_str}\n".encode()
    return head + body + b"\n"


def authorization(
    mchid: str,
    ordering: WechatPayOrdering,
    method: str,
    path_and_query: str,
    body: bytes,
    *,
    timestamp: str,
    nonce_str: str,
) -> str:
    """The Authorization header value (WECHATPAY2-SHA256-RSA2048 scheme)."""
    message = request_signing_message(method, path_and_query, timestamp, nonce_str, body)
    signature = signing.sign_sha256_rsa(ordering.merchant_private_key, message)
    return (
        f'{wechatpay.SIGNATURE_TYPE} mchid="{mchid}",nonce_str="{nonce_str}",'
        f'signature="{signature}",timestamp="{timestamp}",serial_no="{ordering.merchant_serial}"'
    )


def verify_response(
    config: WechatPayConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> None:
    """Check the Wechatpay-* signature of an answer (应答验签); raise OrderError otherwise.

    Same scheme as notifications: timestamp, nonce and body lines, signed with the platform key
    `Wechatpay-Serial` names; the timestamp must be within five minutes, as WeChat's SDKs check.
    """
    h = {k.lower(): v for k, v in headers.items()}
    timestamp = h.get("wechatpay-timestamp", "")
    nonce_str = h.get("wechatpay-nonce", "")
    signature = h.get("wechatpay-signature", "")
    serial = h.get("wechatpay-serial", "")
    request_id = h.get("request-id")
    if not (timestamp and nonce_str and signature and serial):
        raise OrderError("SIGNATURE_INVALID", "the answer is not signed", request_id=request_id)
    # Serials are compared upper-case, as WechatPayConfig stores them.
    key = config.platform_keys.get(serial.strip().upper())
    if key is None:
        raise OrderError(
            "SIGNATURE_INVALID", f"unknown Wechatpay-Serial {serial[:64]}", request_id=request_id
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or (
        abs(now.timestamp() - int(timestamp)) > wechatpay.TIMESTAMP_WINDOW_SECONDS
    ):
        raise OrderError(
            "SIGNATURE_INVALID",
            "Wechatpay-Timestamp is malformed or too far off",
            request_id=request_id,
        )
    message = wechatpay.signing_message(timestamp, nonce_str, body)
    if not keys.verify_sha256_rsa(key, message, signature):
        raise OrderError(
            "SIGNATURE_INVALID", "the answer's signature does not verify", request_id=request_id
        )


async def place_app_order(
    config: WechatPayConfig,
    ordering: WechatPayOrdering,
    order: AppOrder,
    *,
    now: datetime,
) -> str:
    """Place (or repeat) the APP order and return its verified prepay_id; OrderError otherwise.

    `now` (timezone-aware) signs the request and judges the answer's timestamp. One short-lived
    connection per order: top-ups are rare enough that pooling is not worth a shared client.
    """
    body = order_body(config, ordering, order)
    url = httpx.URL(ordering.api_base + APP_ORDER_PATH)
    path_and_query = url.raw_path.decode("ascii")
    headers = {
        "Authorization": authorization(
            config.mchid,
            ordering,
            "POST",
            path_and_query,
            body,
            timestamp=str(int(now.timestamp())),
            nonce_str=nonce(),
        ),
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        async with httpx.AsyncClient(timeout=ordering.timeout_seconds) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as e:
        raise OrderError("NETWORK", f"{type(e).__name__}: {e}"[:200]) from e
    request_id = response.headers.get("request-id")
    if response.status_code != 200:
        code, message = _error_of(response.content)
        raise OrderError(
            "REJECTED",
            f"HTTP {response.status_code} {code}: {message}"[:200],
            status=response.status_code,
            provider_code=code,
            request_id=request_id,
        )
    verify_response(config, response.headers, response.content, now)
    try:
        answer = json.loads(response.content)
    except ValueError as e:
        raise OrderError("MALFORMED", "the answer is not JSON", request_id=request_id) from e
    prepay_id = answer.get("prepay_id") if isinstance(answer, dict) else None
    if not isinstance(prepay_id, str) or not 0 < len(prepay_id) <= PREPAY_ID_MAX:
        raise OrderError("MALFORMED", "the answer has no prepay_id", request_id=request_id)
    return prepay_id


def app_pay_params(
    config: WechatPayConfig,
    ordering: WechatPayOrdering,
    prepay_id: str,
    *,
    now: datetime,
    nonce_str: str | None = None,
) -> AppPayParams:
    """The signed parameters the app hands to the OpenSDK (APP调起支付)."""
    timestamp = str(int(now.timestamp()))
    noncestr = nonce_str or nonce()
    message = f"{config.appid}\n{timestamp}\n{noncestr}\n{prepay_id}\n".encode()
    return AppPayParams(
        appid=config.appid,
        partnerid=config.mchid,
        prepayid=prepay_id,
        package=APP_PACKAGE,
        noncestr=noncestr,
        timestamp=timestamp,
        sign=signing.sign_sha256_rsa(ordering.merchant_private_key, message),
    )


def _error_of(content: bytes) -> tuple[str, str]:
    """WeChat's {"code", "message"}, or what can be said about an answer without one."""
    try:
        answer = json.loads(content)
    except ValueError:
        return "UNKNOWN", content[:80].decode("utf-8", "replace")
    if not isinstance(answer, dict):
        return "UNKNOWN", ""
    return str(answer.get("code", "UNKNOWN"))[:64], str(answer.get("message", ""))[:120]
