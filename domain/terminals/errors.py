"""Error codes of terminal charges, reader taps, DESFire proofs and UID limits."""

from __future__ import annotations

from domain.errors import DomainError


def no_pending_charge() -> DomainError:
    return DomainError(
        "NO_PENDING_CHARGE",
        "没有等待刷卡的收款，请先在收银台输入金额",
        "No charge is waiting for a card: enter the amount on the terminal first",
        None,
    )


def charge_not_found(field: str = "chargeId") -> DomainError:
    return DomainError("NOT_FOUND", "收款不存在", "Charge not found", field)


def charge_not_pending(status: str) -> DomainError:
    return DomainError(
        "CHARGE_NOT_PENDING",
        f"该收款已结束（{status}）",
        f"The charge is no longer waiting ({status})",
        "chargeId",
    )


def too_many_pending() -> DomainError:
    return DomainError(
        "LIMIT_REACHED",
        "等待刷卡的收款过多，请先完成或取消",
        "Too many charges are waiting: complete or cancel some first",
        None,
    )


def no_tapped_card() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "请先刷卡",
        "No card was tapped for this charge yet",
        "chargeId",
    )


def invalid_uid() -> DomainError:
    return DomainError(
        "INVALID_INPUT", "实体卡 UID 格式无效", "Card UID must be 4, 7 or 10 bytes hex", "uid"
    )


def uid_pin_required() -> DomainError:
    return DomainError(
        "UID_PIN_REQUIRED",
        "该卡刷卡过于频繁或超出免密额度，请输入密码",
        "This card needs its PIN: tapped too often or over the amount allowed without a PIN",
        "pin",
    )


def desfire_proof_required() -> DomainError:
    return DomainError(
        "DESFIRE_PROOF_REQUIRED",
        "该卡须经读卡器安全认证后才能使用",
        "This card is accepted only with a DESFire authentication by the reader",
        "desfireProof",
    )


def desfire_proof_invalid() -> DomainError:
    return DomainError(
        "DESFIRE_PROOF_INVALID",
        "卡片认证失败，请重新刷卡",
        "The card failed authentication: tap again",
        "desfireProof",
    )


def desfire_not_configured() -> DomainError:
    return DomainError(
        "DESFIRE_NOT_CONFIGURED",
        "平台未配置 DESFire 密钥",
        "DESFire keys are not configured on this server",
        None,
    )


def invalid_hex(field: str, length: int) -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        f"须为 {length} 字节的十六进制",
        f"Must be {length} bytes in hex",
        field,
    )


def invalid_technology() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "卡片类型须为 UID、DESFIRE_EV2 或 DESFIRE_EV3",
        "Technology must be UID, DESFIRE_EV2 or DESFIRE_EV3",
        "technology",
    )


def rate_limited() -> DomainError:
    return DomainError("RATE_LIMITED", "操作过于频繁，请稍后再试", "Too many requests", None)
