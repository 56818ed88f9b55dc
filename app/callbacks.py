"""Payment-provider notifications: POST /callbacks/wechatpay and /callbacks/alipay.

Each is verified by its adapter (domain/channels), then credits the top-up exactly once
(domain/payments/topups). The answer is what the provider expects: WeChat Pay 204 on success,
4xx/5xx with {"code":"FAIL","message":...} otherwise (it retries); Alipay the plain text
`success` (anything else makes it retry).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain import clock
from domain import config as domain_config
from domain.channels import alipay, wechatpay
from domain.channels.errors import ChannelError, ErrorCode, HttpReply
from domain.payments import topups

log = structlog.get_logger(__name__)

CLOSED_WECHAT = (
    wechatpay.TradeState.CLOSED,
    wechatpay.TradeState.REVOKED,
    wechatpay.TradeState.PAYERROR,
)


def _reply(reply: HttpReply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


async def wechatpay_notify(request: Request) -> Response:
    cfg = domain_config.get().wechatpay
    if cfg is None:
        return _reply(wechatpay.failure_reply(ChannelError(ErrorCode.MALFORMED, "not enabled")))
    body = await request.body()
    try:
        note = wechatpay.verify_notification(cfg, request.headers, body, clock.now())
        if wechatpay.credits(note):
            outcome = await topups.provider_paid(
                channel="WECHAT_PAY",
                out_trade_no=note.out_trade_no,
                provider_trade_no=note.transaction_id,
                amount=note.total_fen,
            )
        elif note.trade_state in CLOSED_WECHAT:
            outcome = await topups.provider_closed(
                channel="WECHAT_PAY", out_trade_no=note.out_trade_no, amount=note.total_fen
            )
        else:
            outcome = "IGNORED"
    except ChannelError as exc:
        log.warning("wechatpay notification refused", code=str(exc.code), reason=exc.message)
        return _reply(wechatpay.failure_reply(exc))
    log.info("wechatpay notification", top_up=note.out_trade_no, outcome=outcome)
    return _reply(wechatpay.success_reply())


def _alipay_form(body: bytes) -> dict[str, str]:
    """Decode the form in the charset the notification names (GBK for older applications)."""
    text = body.decode("ascii", errors="strict")
    charset = dict(parse_qsl(text, encoding="latin-1")).get("charset") or "utf-8"
    charset = {"utf8": "utf-8", "gb2312": "gbk"}.get(charset.lower(), charset.lower())
    if charset not in ("utf-8", "gbk", "gb18030"):
        raise ChannelError(ErrorCode.MALFORMED, "unsupported charset")
    return dict(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"))


async def alipay_notify(request: Request) -> Response:
    cfg = domain_config.get().alipay
    if cfg is None:
        return _reply(alipay.failure_reply(ChannelError(ErrorCode.MALFORMED, "not enabled")))
    try:
        try:
            form = _alipay_form(await request.body())
        except (UnicodeDecodeError, LookupError) as exc:
            raise ChannelError(ErrorCode.MALFORMED, "form is not decodable") from exc
        note = alipay.verify_notify(cfg, form)
        if alipay.credits(note):
            outcome = await topups.provider_paid(
                channel="ALIPAY",
                out_trade_no=note.out_trade_no,
                provider_trade_no=note.trade_no,
                amount=note.total_fen,
            )
        elif note.trade_status is alipay.TradeStatus.TRADE_CLOSED:
            outcome = await topups.provider_closed(
                channel="ALIPAY", out_trade_no=note.out_trade_no, amount=note.total_fen
            )
        else:
            outcome = "IGNORED"
    except ChannelError as exc:
        log.warning("alipay notification refused", code=str(exc.code), reason=exc.message)
        return _reply(alipay.failure_reply(exc))
    log.info("alipay notification", top_up=note.out_trade_no, outcome=outcome)
    return _reply(alipay.success_reply())


callback_routes = [
    Route("/callbacks/wechatpay", wechatpay_notify, methods=["POST"]),
    Route("/callbacks/alipay", alipay_notify, methods=["POST"]),
]
