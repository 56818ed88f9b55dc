"""Error codes of payments and refunds."""

from __future__ import annotations

from domain.errors import DomainError


def payment_not_found() -> DomainError:
    return DomainError("NOT_FOUND", "交易不存在", "Payment not found", "paymentId")


def refund_exceeds_payment() -> DomainError:
    return DomainError(
        "REFUND_EXCEEDS_PAYMENT",
        "退款金额超过可退金额",
        "The refund exceeds what is left of the payment",
        "amount",
    )


def one_card_source() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "cardId、paymentCode、cardUid 须且只能提供一个",
        "Give exactly one of cardId, paymentCode, cardUid",
        "cardId",
    )


def wrong_store() -> DomainError:
    return DomainError(
        "CARD_NOT_ACCEPTED",
        "该卡不能在此门店使用",
        "This card is not accepted at this store",
        "storeId",
    )


def void_too_late() -> DomainError:
    return DomainError(
        "VOID_WINDOW_CLOSED",
        "仅可撤销当日交易，请使用退款",
        "Only same-day payments can be voided; refund it",
        "paymentId",
    )


def channel_unavailable() -> DomainError:
    return DomainError(
        "CHANNEL_NOT_AVAILABLE",
        "该充值渠道暂未开通",
        "This top-up channel is not available yet",
        "channel",
    )


def session_refund_whole() -> DomainError:
    return DomainError(
        "SESSION_REFUND_WHOLE_ONLY",
        "次卡核销只能整笔退回",
        "A session redemption is refunded whole or not at all",
        "amount",
    )


def hold_not_found() -> DomainError:
    return DomainError("NOT_FOUND", "预授权不存在", "Hold not found", "holdId")


_HOLD_ENDED = {"CAPTURED": "完成", "RELEASED": "撤销", "EXPIRED": "过期"}


def hold_not_pending(status: str) -> DomainError:
    return DomainError(
        "HOLD_NOT_PENDING",
        f"预授权已{_HOLD_ENDED.get(status, '结束')}",
        f"The hold is already {status.lower()}",
        "holdId",
    )


def hold_expired() -> DomainError:
    return DomainError(
        "HOLD_EXPIRED",
        "预授权已过期，冻结金额已退回",
        "The hold expired; its money went back",
        "holdId",
    )


def capture_exceeds_hold() -> DomainError:
    return DomainError(
        "CAPTURE_EXCEEDS_HOLD",
        "完成金额超过预授权金额",
        "The capture exceeds the amount held",
        "amount",
    )
