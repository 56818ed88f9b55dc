"""`yikatong ledger verify`: re-derive every balance from the entries and check the invariants.

Each check is one aggregate query, so it scales with the database rather than with memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.db import connection
from domain.sql import fetch


@dataclass
class Report:
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


CHECKS: list[tuple[str, str]] = [
    (
        "account balance differs from the sum of its entries",
        "SELECT a.id, a.balance, COALESCE(SUM(e.amount), 0) AS derived FROM ledger_accounts a"
        " LEFT JOIN ledger_entries e ON e.account_id = a.id GROUP BY a.id, a.balance"
        " HAVING a.balance <> COALESCE(SUM(e.amount), 0)",
    ),
    (
        "account versions have gaps or do not match the entry count",
        "SELECT a.id, a.version, COUNT(e.id) AS n, COALESCE(MAX(e.version), 0) AS top,"
        " COALESCE(MIN(e.version), 1) AS bottom FROM ledger_accounts a"
        " LEFT JOIN ledger_entries e ON e.account_id = a.id GROUP BY a.id, a.version"
        " HAVING a.version <> COUNT(e.id) OR COALESCE(MAX(e.version), 0) <> COUNT(e.id)"
        " OR COALESCE(MIN(e.version), 1) <> 1",
    ),
    (
        "last entry's running balance differs from the account balance",
        "SELECT a.id, a.balance, e.balance_after FROM ledger_accounts a JOIN ledger_entries e"
        " ON e.account_id = a.id AND e.version = a.version WHERE e.balance_after <> a.balance",
    ),
    (
        "running balance does not follow from the previous entry",
        "SELECT e.id, e.account_id FROM ledger_entries e JOIN ledger_entries p"
        " ON p.account_id = e.account_id AND p.version = e.version - 1"
        " WHERE e.balance_after <> p.balance_after + e.amount",
    ),
    (
        "forbidden negative balance",
        "SELECT id, balance FROM ledger_accounts WHERE NOT allow_negative AND balance < 0",
    ),
    (
        "asset does not sum to zero over all entries",
        "SELECT a.asset, SUM(e.amount) AS total FROM ledger_entries e JOIN ledger_accounts a"
        " ON a.id = e.account_id GROUP BY a.asset HAVING SUM(e.amount) <> 0",
    ),
    (
        "transfer legs do not sum to zero, or it has fewer than two legs",
        "SELECT t.id, COALESCE(SUM(e.amount), 0) AS total, COUNT(e.id) AS legs"
        " FROM ledger_transfers t LEFT JOIN ledger_entries e ON e.transfer_id = t.id"
        " GROUP BY t.id HAVING COALESCE(SUM(e.amount), 0) <> 0 OR COUNT(e.id) < 2",
    ),
    (
        "transfer amount differs from the sum of its credits",
        "SELECT t.id, t.amount, SUM(e.amount) AS credits FROM ledger_transfers t"
        " JOIN ledger_entries e ON e.transfer_id = t.id AND e.amount > 0"
        " GROUP BY t.id, t.amount HAVING SUM(e.amount) <> t.amount",
    ),
    (
        "a transfer mixes assets",
        "SELECT t.id FROM ledger_transfers t JOIN ledger_entries e ON e.transfer_id = t.id"
        " JOIN ledger_accounts a ON a.id = e.account_id WHERE a.asset <> t.asset",
    ),
    (
        "a transfer was reversed more than once",
        "SELECT reverses_id, COUNT(*) AS n FROM ledger_transfers WHERE reverses_id IS NOT NULL"
        " GROUP BY reverses_id HAVING COUNT(*) > 1",
    ),
]


async def run_checks(checks: list[tuple[str, str]], report: Report, limit: int = 20) -> None:
    conn = connection()
    for title, sql in checks:
        rows = await fetch(conn, sql)
        for row in rows[:limit]:
            report.problems.append(f"{title}: {dict(row)}")
        if len(rows) > limit:
            report.problems.append(f"{title}: ... and {len(rows) - limit} more")


async def verify() -> Report:
    conn = connection()
    report = Report()
    counts = await fetch(
        conn,
        "SELECT (SELECT COUNT(*) FROM ledger_accounts) AS a, (SELECT COUNT(*) FROM"
        " ledger_transfers) AS t, (SELECT COUNT(*) FROM ledger_entries) AS e",
    )
    report.accounts, report.transfers, report.entries = (
        int(counts[0]["a"]),
        int(counts[0]["t"]),
        int(counts[0]["e"]),
    )
    await run_checks(CHECKS, report)
    return report
