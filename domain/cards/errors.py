"""Error codes of cards."""

from __future__ import annotations

from domain.errors import DomainError

_STATUS = {
    "INACTIVE": ("CARD_NOT_ACTIVE", "卡未激活", "The card is not active"),
    "FROZEN": ("CARD_FROZEN", "卡已冻结", "The card is frozen"),
    "LOST": ("CARD_LOST", "卡已挂失", "The card was reported lost"),
    "EXPIRED": ("CARD_EXPIRED", "卡已过期", "The card has expired"),
    "REPLACED": ("CARD_NOT_ACTIVE", "卡已补换", "The card was replaced"),
    "CANCELLED": ("CARD_NOT_ACTIVE", "卡已注销", "The card was cancelled"),
}


def card_not_usable(status: str) -> DomainError:
    code, zh, en = _STATUS.get(status, ("CARD_NOT_ACTIVE", "卡不可用", "The card cannot be used"))
    return DomainError(code, zh, en, "cardId")


def card_not_found(field: str = "cardId") -> DomainError:
    return DomainError("NOT_FOUND", "卡不存在", "Card not found", field)


def product_not_found() -> DomainError:
    return DomainError("NOT_FOUND", "卡产品不存在", "Card product not found", "productId")


def illegal_transition(status: str, action: str) -> DomainError:
    return DomainError(
        "INVALID_CARD_STATE",
        f"当前卡状态 {status} 不能执行该操作",
        f"A {status} card cannot be {action}",
        "cardId",
    )


def invalid_pin() -> DomainError:
    return DomainError("INVALID_PIN", "密码错误", "Wrong PIN", "pin")


def pin_required() -> DomainError:
    return DomainError(
        "INVALID_PIN", "该金额需要输入密码", "A PIN is required for this amount", "pin"
    )


def pin_locked() -> DomainError:
    return DomainError(
        "PIN_LOCKED",
        "密码错误次数过多，已锁定 24 小时",
        "Too many wrong PINs: locked for 24 hours",
        "pin",
    )


def uid_taken() -> DomainError:
    return DomainError(
        "CARD_UID_TAKEN",
        "该实体卡已绑定其他卡",
        "This physical card is bound to another card",
        "cardUid",
    )


def holder_required() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "记名卡须登记持卡人手机号",
        "A named card needs the holder's phone",
        "holderPhone",
    )


def session_pack_mismatch(price: int, count: int) -> DomainError:
    return DomainError(
        "SESSION_PACK_MISMATCH",
        f"次卡按份购买：每份 {count} 次 {price / 100:.2f} 元，金额须为其整数倍",
        f"Session cards are bought in packs of {count} for {price / 100:.2f} yuan:"
        " the amount must be a whole number of packs",
        "amount",
    )


def insufficient_sessions() -> DomainError:
    return DomainError(
        "INSUFFICIENT_SESSIONS", "剩余次数不足", "Not enough sessions left on the card", "sessions"
    )


def kind_not_supported(kind: str, action: str) -> DomainError:
    return DomainError(
        "CARD_KIND_NOT_SUPPORTED",
        f"{kind} 卡不支持此操作",
        f"A {kind} card cannot be used for {action}",
        "cardId",
    )
