"""Invariants of payments and refunds, checked by `yikatong ledger verify`."""

from __future__ import annotations

from domain.ledger.verify import Report, run_checks

CHECKS: list[tuple[str, str]] = [
    (
        "refunds exceed their payment",
        "SELECT p.id, p.amount, SUM(r.amount) AS refunded FROM payments p JOIN refunds r"
        " ON r.payment_id = p.id GROUP BY p.id, p.amount HAVING SUM(r.amount) > p.amount",
    ),
    (
        "payment's refunded amount differs from its refunds",
        "SELECT p.id, p.refunded_amount, COALESCE(SUM(r.amount), 0) AS refunds FROM payments p"
        " LEFT JOIN refunds r ON r.payment_id = p.id GROUP BY p.id, p.refunded_amount"
        " HAVING p.refunded_amount <> COALESCE(SUM(r.amount), 0)",
    ),
    (
        "payment amount differs from its ledger transfer",
        "SELECT p.id, p.amount, t.amount AS transfer_amount FROM payments p"
        " JOIN ledger_transfers t ON t.id = p.transfer_id WHERE t.amount <> p.amount",
    ),
    (
        "payment has no ledger transfer",
        "SELECT p.id FROM payments p LEFT JOIN ledger_transfers t ON t.id = p.transfer_id"
        " WHERE t.id IS NULL",
    ),
    (
        "a payment was voided more than once or voided after a refund",
        "SELECT payment_id, COUNT(*) AS n FROM refunds WHERE kind = 'VOID' GROUP BY payment_id"
        " HAVING COUNT(*) > 1",
    ),
    (
        "a hold's ledger account does not hold what the hold says",
        "SELECT h.id, h.status, h.amount, a.balance FROM holds h JOIN ledger_accounts a"
        " ON a.id = h.id || ':CARD_HELD'"
        " WHERE a.balance <> CASE WHEN h.status = 'PENDING' THEN h.amount ELSE 0 END",
    ),
    (
        "a hold has no ledger account",
        "SELECT h.id FROM holds h LEFT JOIN ledger_accounts a ON a.id = h.id || ':CARD_HELD'"
        " WHERE a.id IS NULL",
    ),
    (
        "a session redemption's sessions differ from its session transfer",
        "SELECT p.id, p.sessions, t.amount FROM payments p LEFT JOIN ledger_transfers t"
        " ON t.id = p.session_transfer_id WHERE p.sessions > 0"
        " AND (t.id IS NULL OR t.amount <> p.sessions OR t.asset <> 'SESSIONS')",
    ),
]


async def verify(report: Report) -> None:
    await run_checks(CHECKS, report)
