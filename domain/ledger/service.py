"""Posting transfers (记账): double entry, conditional debits, running balances, no overdraft.

Every balance change is `post()`: inside the caller's transaction it updates each account once,
in a fixed (sorted) order so concurrent transfers cannot deadlock, debits only where the balance
allows it in the same statement, and writes the transfer and its entries. Hot accounts (a
merchant's receivable) are split into shards so unrelated payments do not queue on one row.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from domain import clock
from domain.ids import new_id
from domain.ledger import errors
from domain.sql import execute, fetch

FEN = "FEN"
SESSIONS = "SESSIONS"
POINTS = "POINTS"

# Account kinds.
CARD_PRINCIPAL = "CARD_PRINCIPAL"  # 本金: prepaid money, refundable
CARD_BONUS = "CARD_BONUS"  # 赠送金: bonus value, spendable, never refunded as cash
CARD_SESSIONS = "CARD_SESSIONS"  # 次卡 sessions
MERCHANT_RECEIVABLE = "MERCHANT_RECEIVABLE"  # what card spending earned the merchant
MERCHANT_CASH = "MERCHANT_CASH"  # money taken in for cards before escrow custody (old entries)
MERCHANT_ESCROW = "MERCHANT_ESCROW"  # 存管: prepaid money held at the custodian bank
MERCHANT_OPERATING = "MERCHANT_OPERATING"  # prepaid money the merchant may use
MERCHANT_BONUS_FUNDING = "MERCHANT_BONUS_FUNDING"  # where bonus value comes from
MERCHANT_SESSIONS_ISSUED = "MERCHANT_SESSIONS_ISSUED"  # sessions sold minus sessions used
CARD_HELD = "CARD_HELD"  # 预授权: money of one hold, set aside until captured or released

HOT_SHARDS = 8


def account_id(owner_id: str, kind: str, shard: int | None = None) -> str:
    return f"{owner_id}:{kind}" if shard is None else f"{owner_id}:{kind}:{shard}"


def hot_account(owner_id: str, kind: str) -> str:
    """One shard of a hot account, picked at random so concurrent payments spread out."""
    return account_id(owner_id, kind, random.randrange(HOT_SHARDS))  # noqa: S311


@dataclass(frozen=True)
class AccountSpec:
    owner_id: str
    kind: str
    asset: str
    allow_negative: bool = False
    sharded: bool = False

    def ids(self) -> list[str]:
        if self.sharded:
            return [account_id(self.owner_id, self.kind, s) for s in range(HOT_SHARDS)]
        return [account_id(self.owner_id, self.kind)]


def merchant_accounts(merchant_id: str) -> list[AccountSpec]:
    return [
        AccountSpec(merchant_id, MERCHANT_RECEIVABLE, FEN, allow_negative=True, sharded=True),
        AccountSpec(merchant_id, MERCHANT_CASH, FEN, allow_negative=True, sharded=True),
        AccountSpec(merchant_id, MERCHANT_ESCROW, FEN, allow_negative=True, sharded=True),
        AccountSpec(merchant_id, MERCHANT_OPERATING, FEN, allow_negative=True, sharded=True),
        AccountSpec(merchant_id, MERCHANT_BONUS_FUNDING, FEN, allow_negative=True, sharded=True),
        AccountSpec(
            merchant_id, MERCHANT_SESSIONS_ISSUED, SESSIONS, allow_negative=True, sharded=True
        ),
    ]


def card_accounts(card_id: str) -> list[AccountSpec]:
    return [
        AccountSpec(card_id, CARD_PRINCIPAL, FEN),
        AccountSpec(card_id, CARD_BONUS, FEN),
        AccountSpec(card_id, CARD_SESSIONS, SESSIONS),
    ]


def hold_account(hold_id: str) -> AccountSpec:
    return AccountSpec(hold_id, CARD_HELD, FEN)


async def open_accounts(conn: BaseDBAsyncClient, specs: list[AccountSpec]) -> None:
    """Create accounts that do not exist yet (idempotent)."""
    now = clock.now()
    for spec in specs:
        for acc in spec.ids():
            await execute(
                conn,
                "INSERT INTO ledger_accounts (id, owner_id, kind, asset, balance, version,"
                " allow_negative, created_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $6)"
                " ON CONFLICT (id) DO NOTHING",
                acc,
                spec.owner_id,
                spec.kind,
                spec.asset,
                spec.allow_negative,
                now,
            )


@dataclass(frozen=True)
class Posted:
    transfer_id: str
    balances: dict[str, int]  # account id -> balance after


async def post(
    conn: BaseDBAsyncClient,
    *,
    kind: str,
    asset: str,
    postings: list[tuple[str, int]],
    reference: str | None = None,
    reverses_id: str | None = None,
    transfer_id: str | None = None,
) -> Posted:
    """Apply one transfer. `postings` are (account id, signed amount): negative is a debit.

    Raises INSUFFICIENT_FUNDS (the caller's transaction must roll back) or ALREADY_REVERSED.
    """
    net: dict[str, int] = defaultdict(int)
    for acc, amount in postings:
        net[acc] += amount
    moves = sorted((acc, amt) for acc, amt in net.items() if amt != 0)
    if sum(amt for _, amt in moves) != 0 or len(moves) < 2:
        raise ValueError(f"unbalanced or empty transfer: {postings}")
    total = sum(amt for _, amt in moves if amt > 0)
    transfer_id = transfer_id or new_id("txn")
    now = clock.now()
    try:
        await execute(
            conn,
            "INSERT INTO ledger_transfers (id, kind, asset, amount, reference, reverses_id,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            transfer_id,
            kind,
            asset,
            total,
            reference,
            reverses_id,
            now,
        )
    except IntegrityError as exc:
        if reverses_id is not None:
            raise errors.already_reversed() from exc
        raise
    balances: dict[str, int] = {}
    entries: list[tuple[str, int, int, int]] = []
    for acc, amount in moves:
        # The balance check and the change are one statement: no read-then-write window.
        rows = await fetch(
            conn,
            "UPDATE ledger_accounts SET balance = balance + $1, version = version + 1"
            " WHERE id = $2 AND asset = $3 AND (allow_negative OR balance + $1 >= 0)"
            " RETURNING balance, version",
            amount,
            acc,
            asset,
        )
        if not rows:
            exists = await fetch(conn, "SELECT asset FROM ledger_accounts WHERE id = $1", acc)
            if not exists or exists[0]["asset"] != asset:
                raise LookupError(f"no {asset} account {acc}")
            raise errors.insufficient_funds()
        balances[acc] = int(rows[0]["balance"])
        entries.append((acc, amount, balances[acc], int(rows[0]["version"])))
    values_sql = ", ".join(
        f"(${i * 6 + 1}, ${i * 6 + 2}, ${i * 6 + 3}, ${i * 6 + 4}, ${i * 6 + 5}, ${i * 6 + 6})"
        for i in range(len(entries))
    )
    params: list[object] = []
    for acc, amount, balance, version in entries:
        params += [transfer_id, acc, amount, balance, version, now]
    await execute(
        conn,
        "INSERT INTO ledger_entries (transfer_id, account_id, amount, balance_after, version,"  # noqa: S608 (placeholders only)
        f" created_at) VALUES {values_sql}",
        *params,
    )
    return Posted(transfer_id=transfer_id, balances=balances)


async def lock_balances(conn: BaseDBAsyncClient, account_ids: list[str]) -> dict[str, int]:
    """Read and lock accounts in id order (the order `post` locks in) for a decision that
    depends on their balances; SQLite serialises writers anyway."""
    marks = ", ".join(f"${i + 1}" for i in range(len(account_ids)))
    lock = " FOR UPDATE" if conn.capabilities.dialect == "postgres" else ""
    rows = await fetch(
        conn,
        f"SELECT id, balance FROM ledger_accounts WHERE id IN ({marks}) ORDER BY id{lock}",  # noqa: S608
        *account_ids,
    )
    return {str(r["id"]): int(r["balance"]) for r in rows}


async def balances(conn: BaseDBAsyncClient, account_ids: list[str]) -> dict[str, int]:
    if not account_ids:
        return {}
    marks = ", ".join(f"${i + 1}" for i in range(len(account_ids)))
    rows = await fetch(
        conn,
        f"SELECT id, balance FROM ledger_accounts WHERE id IN ({marks})",  # noqa: S608
        *account_ids,
    )
    return {str(r["id"]): int(r["balance"]) for r in rows}


# --- idempotency -----------------------------------------------------------------------------


def request_hash(operation: str, request: Mapping[str, object]) -> str:
    return hashlib.sha256(
        operation.encode() + b"|" + orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def claim_idempotency_key(
    conn: BaseDBAsyncClient,
    *,
    scope: str,
    key: str,
    operation: str,
    request: Mapping[str, object],
    result_id: str,
) -> str | None:
    """Claim `key` for this request inside the caller's transaction.

    Returns None when the key is new (go ahead; `result_id` is recorded), or the result id of
    the first request with the same key and the same content (replay it). A concurrent request
    with the same key waits on the unique index until the first one commits or rolls back.
    """
    if not 8 <= len(key) <= 100:
        raise errors.invalid_idempotency_key()
    digest = request_hash(operation, request)
    rows = await fetch(
        conn,
        "INSERT INTO idempotency_keys (scope, key, operation, request_hash, result_id, created_at,"
        " extra) VALUES ($1, $2, $3, $4, $5, $6, '{}') ON CONFLICT (scope, key) DO NOTHING"
        " RETURNING id",
        scope,
        key,
        operation,
        digest,
        result_id,
        clock.now(),
    )
    if rows:
        return None
    found = await find_idempotent_result(
        conn, scope=scope, key=key, operation=operation, request=request
    )
    if found is None:  # the other request rolled back between our two statements
        raise errors.idempotency_key_reused()
    return found


async def find_idempotent_result(
    conn: BaseDBAsyncClient,
    *,
    scope: str,
    key: str,
    operation: str,
    request: Mapping[str, object],
) -> str | None:
    """The result id of an earlier request with this key, None if the key is unused.

    The same key with a different request (or operation) is IDEMPOTENCY_KEY_REUSED.
    """
    rows = await fetch(
        conn,
        "SELECT operation, request_hash, result_id FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    if not rows:
        return None
    row = rows[0]
    if row["operation"] != operation or row["request_hash"] != request_hash(operation, request):
        raise errors.idempotency_key_reused()
    return str(row["result_id"])
