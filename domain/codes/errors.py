"""Error codes of payment codes and merchant codes."""

from __future__ import annotations

from domain.errors import DomainError


def code_invalid(field: str = "paymentCode", why: str = "", why_zh: str = "") -> DomainError:
    zh = "付款码无效" if field == "paymentCode" else "二维码无效"
    return DomainError(
        "CODE_INVALID",
        zh + (f"（{why_zh}）" if why_zh else ""),
        "Invalid code" + (f" ({why})" if why else ""),
        field,
    )


def code_expired(field: str = "paymentCode") -> DomainError:
    return DomainError(
        "CODE_EXPIRED",
        "付款码已过期，请刷新" if field == "paymentCode" else "二维码已过期",
        "The code has expired" + (", show a fresh one" if field == "paymentCode" else ""),
        field,
    )


class CodeAlreadyUsed(DomainError):
    """A code that paid once. Carries its card so a retry of that payment can replay it."""

    def __init__(self, card_id: str) -> None:
        super().__init__(
            "CODE_ALREADY_USED", "付款码已使用，请刷新", "The code was already used", "paymentCode"
        )
        self.card_id = card_id


def rate_limited(field: str = "paymentCode") -> DomainError:
    return DomainError(
        "RATE_LIMITED", "尝试次数过多，请稍后再试", "Too many attempts, try later", field
    )


def daily_limit_exceeded(limit: int) -> DomainError:
    return DomainError(
        "PAYMENT_CODE_DAILY_LIMIT",
        f"付款码单日累计支付不能超过 {limit // 100} 元",
        f"Payments by code may not exceed {limit // 100} yuan a day",
        "amount",
    )


def not_card_holder() -> DomainError:
    return DomainError(
        "NOT_CARD_HOLDER", "仅持卡人可生成付款码", "Only the card holder can do this", "cardId"
    )


def device_limit_reached(limit: int) -> DomainError:
    return DomainError(
        "DEVICE_LIMIT_REACHED",
        f"每张卡最多绑定 {limit} 台设备",
        f"A card has at most {limit} devices",
        "cardId",
    )


def device_not_found() -> DomainError:
    return DomainError("NOT_FOUND", "设备不存在", "Device not found", "deviceId")
