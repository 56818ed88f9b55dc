"""Error codes of the ledger."""

from __future__ import annotations

from domain.errors import DomainError


def insufficient_funds() -> DomainError:
    return DomainError("INSUFFICIENT_FUNDS", "余额不足", "Insufficient balance", "amount")


def already_reversed() -> DomainError:
    return DomainError("ALREADY_REVERSED", "该交易已撤销", "This transaction was already reversed")


def idempotency_key_reused() -> DomainError:
    return DomainError(
        "IDEMPOTENCY_KEY_REUSED",
        "幂等键已用于另一笔不同的请求",
        "This idempotency key was used for a different request",
        "idempotencyKey",
    )


def invalid_idempotency_key() -> DomainError:
    return DomainError(
        "INVALID_INPUT",
        "幂等键须为 8-100 个字符",
        "idempotencyKey must be 8-100 characters",
        "idempotencyKey",
    )
