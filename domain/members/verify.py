"""Invariants of points, checked by `yikatong ledger verify` (besides the ledger's own checks,
which already cover the POINTS accounts: balances re-derived, never negative where forbidden,
every transfer balanced)."""

from __future__ import annotations

from domain.ledger.verify import Report, run_checks

_MEMBER_BALANCE = (
    "SELECT m.id, a.balance, COALESCE((SELECT SUM(l.remaining) FROM points_lots l"
    " WHERE l.membership_id = m.id AND l.status = '{status}'), 0) AS lots FROM memberships m"
    " JOIN ledger_accounts a ON a.id = m.id || ':{kind}'"
    " WHERE a.balance <> COALESCE((SELECT SUM(l.remaining) FROM points_lots l"
    " WHERE l.membership_id = m.id AND l.status = '{status}'), 0)"
)

CHECKS: list[tuple[str, str]] = [
    (
        "a member's available points differ from their available lots",
        _MEMBER_BALANCE.format(status="AVAILABLE", kind="POINTS_AVAILABLE"),
    ),
    (
        "a member's pending points differ from their pending lots",
        _MEMBER_BALANCE.format(status="PENDING", kind="POINTS_PENDING"),
    ),
    (
        "a points lot holds less than nothing, more than it earned, or the wrong status",
        "SELECT id, points, remaining, expired, status FROM points_lots WHERE remaining < 0"
        " OR expired < 0 OR remaining + expired > points"
        " OR (status IN ('PENDING', 'AVAILABLE')) <> (remaining > 0)",
    ),
    (
        "a member's points debt is positive",
        "SELECT id, balance FROM ledger_accounts WHERE kind = 'POINTS_DEBT' AND balance > 0",
    ),
    (
        "a member in debt still holds points (debt must be paid first)",
        "SELECT d.owner_id, d.balance FROM ledger_accounts d JOIN ledger_accounts a"
        " ON a.id = d.owner_id || ':POINTS_AVAILABLE' JOIN ledger_accounts p"
        " ON p.id = d.owner_id || ':POINTS_PENDING' WHERE d.kind = 'POINTS_DEBT'"
        " AND d.balance < 0 AND (a.balance > 0 OR p.balance > 0)",
    ),
    (
        "a member's points differ from their statement",
        "SELECT m.id, COALESCE(SUM(a.balance), 0) AS held, (SELECT COALESCE(SUM(s.points), 0)"
        " FROM points_activities s WHERE s.membership_id = m.id) AS statement FROM memberships m"
        " JOIN ledger_accounts a ON a.owner_id = m.id AND a.asset = 'POINTS' GROUP BY m.id"
        " HAVING COALESCE(SUM(a.balance), 0) <> (SELECT COALESCE(SUM(s.points), 0)"
        " FROM points_activities s WHERE s.membership_id = m.id)",
    ),
    (
        "a payment's points taken back differ from its refunds' or exceed what it earned",
        "SELECT p.id, p.points, p.clawed_points, p.refunded_eligible,"
        " COALESCE(SUM(r.points), 0) AS refund_points, COALESCE(SUM(r.eligible), 0) AS refunds"
        " FROM points_accruals p LEFT JOIN points_accruals r ON r.kind = 'REFUND'"
        " AND r.payment_id = p.payment_id WHERE p.kind = 'PAYMENT'"
        " GROUP BY p.id, p.points, p.clawed_points, p.refunded_eligible"
        " HAVING p.clawed_points <> -COALESCE(SUM(r.points), 0)"
        " OR p.refunded_eligible <> -COALESCE(SUM(r.eligible), 0)"
        " OR p.clawed_points > p.points OR p.clawed_points < 0",
    ),
    (
        "a fully refunded payment kept some of its points",
        "SELECT id, points, clawed_points FROM points_accruals WHERE kind = 'PAYMENT'"
        " AND eligible > 0 AND refunded_eligible = eligible AND clawed_points <> points",
    ),
    (
        "a payment's points accrual counts another amount than the payment",
        "SELECT a.id, a.amount, p.amount AS paid FROM points_accruals a JOIN payments p"
        " ON p.id = a.payment_id WHERE a.kind = 'PAYMENT' AND a.amount <> p.amount",
    ),
    (
        "a reward's redeemed count differs from its redemptions, or its stock is negative",
        "SELECT w.id, w.stock, w.redeemed_count, COUNT(r.id) AS n FROM rewards w"
        " LEFT JOIN redemptions r ON r.reward_id = w.id GROUP BY w.id, w.stock, w.redeemed_count"
        " HAVING w.redeemed_count <> COUNT(r.id) OR w.stock < 0",
    ),
    (
        "a member redeemed a reward more often than its limit",
        "SELECT r.membership_id, r.reward_id, COUNT(*) AS n, w.per_member_limit FROM redemptions r"
        " JOIN rewards w ON w.id = r.reward_id WHERE w.per_member_limit IS NOT NULL"
        " GROUP BY r.membership_id, r.reward_id, w.per_member_limit"
        " HAVING COUNT(*) > w.per_member_limit",
    ),
    (
        "a redemption's points differ from its ledger transfer",
        "SELECT r.id, r.points, t.amount FROM redemptions r LEFT JOIN ledger_transfers t"
        " ON t.id = r.transfer_id WHERE t.id IS NULL OR t.amount <> r.points"
        " OR t.asset <> 'POINTS'",
    ),
    (
        "a programme's redeemed points differ from its redemptions",
        "SELECT g.merchant_id, COALESCE((SELECT SUM(a.balance) FROM ledger_accounts a"
        " WHERE a.owner_id = g.merchant_id AND a.kind = 'POINTS_REDEEMED'), 0) AS ledger,"
        " COALESCE((SELECT SUM(r.points) FROM redemptions r WHERE r.merchant_id = g.merchant_id),"
        " 0) AS redeemed FROM points_programmes g"
        " WHERE COALESCE((SELECT SUM(a.balance) FROM ledger_accounts a"
        " WHERE a.owner_id = g.merchant_id AND a.kind = 'POINTS_REDEEMED'), 0)"
        " <> COALESCE((SELECT SUM(r.points) FROM redemptions r"
        " WHERE r.merchant_id = g.merchant_id), 0)",
    ),
    (
        "a programme's expired points differ from its expired lots",
        "SELECT g.merchant_id FROM points_programmes g"
        " WHERE COALESCE((SELECT SUM(a.balance) FROM ledger_accounts a"
        " WHERE a.owner_id = g.merchant_id AND a.kind = 'POINTS_EXPIRED'), 0)"
        " <> COALESCE((SELECT SUM(l.expired) FROM points_lots l JOIN memberships m"
        " ON m.id = l.membership_id WHERE m.merchant_id = g.merchant_id), 0)",
    ),
]


async def verify(report: Report) -> None:
    await run_checks(CHECKS, report)
