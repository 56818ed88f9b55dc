"""Escrow custody: input -> domain call, and the movements of a merchant's escrow."""

from __future__ import annotations

from typing import Any

from domain.db import connection
from domain.escrow import service as escrow
from domain.escrow.models import EscrowAccount, EscrowCheck
from domain.ledger import service as ledger
from domain.merchants.models import Merchant
from domain.sql import fetch
from resolvers.context import Context


async def account(ctx: Context, merchant_id: str) -> tuple[Merchant, EscrowAccount | None]:
    return await escrow.account_for(ctx.require_viewer(), merchant_id)


async def custodian_accounts(ctx: Context) -> list[tuple[Merchant, EscrowAccount]]:
    accounts = await escrow.accounts_of_custodian(ctx.require_viewer())
    merchants = {m.id: m for m in await Merchant.filter(id__in=[a.merchant_id for a in accounts])}
    return [(merchants[a.merchant_id], a) for a in accounts if a.merchant_id in merchants]


async def open_account(ctx: Context, data: dict[str, Any]) -> str:
    opened = await escrow.open_account(ctx.require_viewer(), **data)
    return opened.merchant_id


async def withdraw(ctx: Context, data: dict[str, Any]) -> str:
    await escrow.withdraw(ctx.require_viewer(), **data)
    return str(data["merchant_id"])


async def deposit(ctx: Context, data: dict[str, Any]) -> str:
    await escrow.deposit(ctx.require_viewer(), **data)
    return str(data["merchant_id"])


async def position(merchant: Merchant) -> escrow.Position:
    return await escrow.position(merchant)


async def shortfalls(ctx: Context, day: str | None) -> list[EscrowCheck]:
    return await escrow.shortfalls(ctx.require_viewer(), day)


async def latest_check(merchant_id: str) -> EscrowCheck | None:
    return await escrow.latest_check(merchant_id)


async def movements(merchant_id: str, first: int) -> list[dict[str, Any]]:
    """Newest first: each transfer that moved the merchant's escrow, + into escrow."""
    ids = [
        ledger.account_id(merchant_id, ledger.MERCHANT_ESCROW, s) for s in range(ledger.HOT_SHARDS)
    ]
    marks = ", ".join(f"${i + 1}" for i in range(len(ids)))
    return await fetch(
        connection(),
        "SELECT e.transfer_id, t.kind, -e.amount AS amount, e.created_at FROM ledger_entries e"  # noqa: S608
        f" JOIN ledger_transfers t ON t.id = e.transfer_id WHERE e.account_id IN ({marks})"
        f" ORDER BY e.id DESC LIMIT {max(1, min(first, 100))}",
        *ids,
    )
