"""Error codes of merchants, stores, staff and terminals."""

from __future__ import annotations

from domain.errors import DomainError


def merchant_not_found(field: str = "merchantId") -> DomainError:
    return DomainError("NOT_FOUND", "商户不存在", "Merchant not found", field)


def store_not_found(field: str = "storeId") -> DomainError:
    return DomainError("NOT_FOUND", "门店不存在", "Store not found", field)


def invalid_role() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "角色须为 MERCHANT_ADMIN 或 MERCHANT_STAFF",
        "Role must be MERCHANT_ADMIN or MERCHANT_STAFF",
        "role",
    )


def terminal_not_found(field: str = "terminalId") -> DomainError:
    return DomainError("NOT_FOUND", "终端不存在", "Terminal not found", field)


def terminal_revoked(field: str | None = "terminalId") -> DomainError:
    return DomainError("TERMINAL_REVOKED", "终端已停用", "The terminal was revoked", field)


def status_too_long() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "版本最多 40 字，状态最多 200 字",
        "App version is at most 40 characters, reader status at most 200",
        None,
    )
