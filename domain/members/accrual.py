"""The accrual job: points for payments and back for refunds, after the fact, exactly once.

The card payment path is not touched (it stays one round trip). This job, run by the sweeper
and callable directly (`await accrue_points()`), looks at payments, refunds and named cards that
are newer than its cursors and not yet accounted for, and for each one, in one transaction:

    claim it: INSERT a points accrual whose `source_id` (the payment or refund id) is UNIQUE
      (a second worker doing the same payment waits on that index and then finds it taken),
    lock the membership, evaluate the rules, post the points, write the lot and the statement.

Ids (`pay_`, `rfd_`, `card_` + a body that starts with the creation time) sort by creation
time, so each scan starts at a cursor; the cursor never passes ids younger than MARGIN (a
transaction still in flight may commit a slightly older id) nor a row that failed, and everything
above it is checked against the accruals again, so nothing is missed and nothing is done twice.
A payment with no card holder earns nothing (bearer and gift cards have no member).
Refunds take back points in proportion to the payment's eligible amount (cumulative, rounding
down, so the last refund takes back exactly the rest); what the member no longer has becomes
debt that later earnings pay first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.db import connection, transaction
from domain.ids import new_id
from domain.members import enrol, points, tiers
from domain.members import rules as engine
from domain.members.models import (
    MemberProfile,
    Membership,
    PointsAccrual,
    PointsProgramme,
    Tier,
)
from domain.sql import execute, fetch

log = structlog.get_logger(__name__)

MARGIN = timedelta(minutes=10)
BATCH = 200
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # domain/ids.py's, whose ids sort by time


def id_floor(prefix: str) -> str:
    """A string below every id of `prefix` made from MARGIN ago on (ids use the real clock)."""
    ms = time.time_ns() // 1_000_000 - int(MARGIN.total_seconds() * 1000)
    chars = []
    for _ in range(10):
        chars.append(_ALPHABET[ms & 31])
        ms >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def _dt(value: Any) -> datetime:
    """Timestamps come back from raw SQL as datetimes (asyncpg) or ISO strings (SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def _cursor(name: str) -> str:
    rows = await fetch(
        connection(), "SELECT position FROM points_job_cursors WHERE name = $1", name
    )
    return str(rows[0]["position"]) if rows else ""


async def _advance(name: str, position: str) -> None:
    """Move the cursor forward only (several workers may advance it at once)."""
    await execute(
        connection(),
        "INSERT INTO points_job_cursors (name, position, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
        " updated_at = excluded.updated_at WHERE points_job_cursors.position < excluded.position",
        name,
        position,
        clock.now(),
    )


async def _scan(
    name: str,
    prefix: str,
    sql: str,
    handle: Callable[[dict[str, Any]], Awaitable[int]],
    limit: int,
) -> int:
    """Feed rows with ids above the cursor to `handle`; move the cursor past what is settled
    (never past a row that failed: it is tried again next run, the others are not redone)."""
    start = await _cursor(name)
    floor = id_floor(prefix)
    at = settled = start
    done = seen = 0
    failed = False
    while seen < limit:
        rows = await fetch(connection(), sql, at, BATCH)
        for row in rows:
            try:
                done += await handle(row)
            except Exception:  # one bad row must not hold up the others
                log.exception("points accrual failed", job=name, id=row["id"])
                failed = True
            if not failed:
                settled = str(row["id"])
        seen += len(rows)
        if len(rows) < BATCH:
            if not failed:
                settled = max(settled, floor)  # nothing else is above the cursor
            break
        at = str(rows[-1]["id"])
    position = min(settled, floor)
    if position > start:
        await _advance(name, position)
    return done


# --- programmes, members, facts ----------------------------------------------------------------


async def _programme(merchant_id: str) -> PointsProgramme | None:
    return await PointsProgramme.get_or_none(merchant_id=merchant_id)


def _eligible(programme: PointsProgramme, amount: int, principal: int) -> int:
    return amount if programme.earn_on_bonus else principal


PAYMENTS = (
    "SELECT p.id, p.merchant_id, p.store_id, p.amount, p.principal_amount, p.created_at,"
    " c.holder_id FROM payments p JOIN points_programmes g ON g.merchant_id = p.merchant_id"
    " JOIN cards c ON c.id = p.card_id WHERE p.id > $1 AND c.holder_id IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM points_accruals a WHERE a.source_id = p.id)"
    " ORDER BY p.id LIMIT $2"
)
REFUNDS = (
    "SELECT r.id, r.payment_id, r.amount, r.principal_amount, r.created_at FROM refunds r"
    " JOIN payments p ON p.id = r.payment_id JOIN points_programmes g"
    " ON g.merchant_id = p.merchant_id WHERE r.id > $1"
    " AND NOT EXISTS (SELECT 1 FROM points_accruals a WHERE a.source_id = r.id)"
    " ORDER BY r.id LIMIT $2"
)
NAMED_CARDS = (
    "SELECT c.id, c.merchant_id, c.holder_id, c.created_at FROM cards c"
    " JOIN points_programmes g ON g.merchant_id = c.merchant_id WHERE c.id > $1"
    " AND c.holder_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM memberships m"
    " WHERE m.merchant_id = c.merchant_id AND m.user_id = c.holder_id) ORDER BY c.id LIMIT $2"
)
ONE_PAYMENT = (
    "SELECT p.id, p.merchant_id, p.store_id, p.amount, p.principal_amount, p.created_at,"
    " c.holder_id FROM payments p JOIN cards c ON c.id = p.card_id WHERE p.id = $1"
)


async def _claim(
    conn: BaseDBAsyncClient,
    *,
    accrual_id: str,
    source_id: str,
    kind: str,
    membership: Membership,
    payment_id: str,
    store_id: str | None,
    amount: int,
    eligible: int,
    occurred_at: datetime,
) -> bool:
    rows = await fetch(
        conn,
        "INSERT INTO points_accruals (id, source_id, kind, membership_id, merchant_id,"
        " payment_id, store_id, amount, eligible, points, refunded_eligible, clawed_points,"
        " debt_repaid, debt_created, fired, occurred_at, created_at) VALUES ($1, $2, $3, $4,"
        " $5, $6, $7, $8, $9, 0, 0, 0, 0, 0, '[]', $10, $11)"
        " ON CONFLICT (source_id) DO NOTHING RETURNING id",
        accrual_id,
        source_id,
        kind,
        membership.id,
        membership.merchant_id,
        payment_id,
        store_id,
        amount,
        eligible,
        occurred_at,
        clock.now(),
    )
    return bool(rows)


async def _used_today(conn: BaseDBAsyncClient, membership_id: str, at: datetime) -> dict[str, int]:
    start, end = engine.day_bounds(at)
    fired = await (
        PointsAccrual.filter(
            membership_id=membership_id,
            kind="PAYMENT",
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .using_db(conn)
        .values_list("fired", flat=True)
    )
    return engine.used_by_rule([f or [] for f in fired])


async def accrue_payment(row: dict[str, Any]) -> int:
    """Points for one payment (a row of PAYMENTS); 1 if accounted now, 0 if not due."""
    programme = await _programme(str(row["merchant_id"]))
    occurred_at = _dt(row["created_at"])
    if programme is None or row["holder_id"] is None or occurred_at < programme.created_at:
        return 0
    amount = int(row["amount"])
    eligible = _eligible(programme, amount, int(row["principal_amount"]))
    accrual_id = new_id("pac")
    async with transaction() as conn:
        membership, _ = await enrol.ensure_membership(
            conn, programme, str(row["holder_id"]), "PAYMENT", occurred_at
        )
        membership = await points.lock_membership(conn, membership.id)
        claimed = await _claim(
            conn,
            accrual_id=accrual_id,
            source_id=str(row["id"]),
            kind="PAYMENT",
            membership=membership,
            payment_id=str(row["id"]),
            store_id=row["store_id"],
            amount=amount,
            eligible=eligible,
            occurred_at=occurred_at,
        )
        if not claimed:
            return 0
        tier = (
            await Tier.filter(id=membership.tier_id).using_db(conn).first()
            if membership.tier_id
            else None
        )
        profile = await MemberProfile.filter(user_id=membership.user_id).using_db(conn).first()
        fired = engine.payment_points(
            await enrol.rules_of(conn, membership.merchant_id),
            engine.Facts(
                eligible=eligible,
                at=occurred_at,
                store_id=row["store_id"],
                tier_id=tier.id if tier else None,
                tier_name=tier.name if tier else None,
                tier_multiplier_percent=tier.points_multiplier_percent if tier else 100,
                birthday=profile.birthday if profile else None,
                first_purchase=membership.first_purchase_at is None,
                used_today=await _used_today(conn, membership.id, occurred_at),
            ),
        )
        total = sum(f.points for f in fired)
        fired_dicts = [f.as_dict() for f in fired]
        changes: dict[str, Any] = {"fired": fired_dicts}
        if total > 0:
            credited = await points.credit(
                conn,
                membership,
                programme,
                points=total,
                from_kind=points.ISSUED,
                transfer_kind="POINTS_EARN",
                source="PAYMENT",
                reference=accrual_id,
                earned_at=occurred_at,
                available_at=occurred_at + timedelta(days=programme.pending_days),
            )
            changes.update(
                points=total,
                lot_id=credited.lot_id,
                transfer_id=credited.transfer_id,
                debt_repaid=credited.debt_repaid,
            )
        await PointsAccrual.filter(id=accrual_id).using_db(conn).update(**changes)
        last = membership.last_visit_at
        await (
            Membership.filter(id=membership.id)
            .using_db(conn)
            .update(
                total_spend=membership.total_spend + amount,
                visits=membership.visits + 1,
                last_visit_at=occurred_at if last is None or occurred_at > last else last,
                first_purchase_at=membership.first_purchase_at or occurred_at,
            )
        )
        if total > 0:
            await points.record(
                conn,
                membership.id,
                kind="EARN",
                points=total,
                reference=str(row["id"]),
                transfer_id=changes["transfer_id"],
                detail={
                    "paymentId": row["id"],
                    "amount": amount,
                    "eligible": eligible,
                    "rules": fired_dicts,
                    "debtRepaid": changes["debt_repaid"],
                },
            )
        await tiers.upgrade_if_qualified(conn, membership, clock.now())
    return 1


async def _payment_accrual(payment_id: str) -> PointsAccrual | None:
    """The payment's accrual, accounting for the payment first if that is still due."""
    found = await PointsAccrual.get_or_none(source_id=payment_id)
    if found is None:
        rows = await fetch(connection(), ONE_PAYMENT, payment_id)
        if rows:
            await accrue_payment(rows[0])
        found = await PointsAccrual.get_or_none(source_id=payment_id)
    return found


async def accrue_refund(row: dict[str, Any]) -> int:
    """Take back what a refunded payment earned, in proportion (a row of REFUNDS)."""
    paid = await _payment_accrual(str(row["payment_id"]))
    if paid is None:
        return 0  # the payment earned nothing and counted for nothing
    accrual_id = new_id("pac")
    refund_id = str(row["id"])
    occurred_at = _dt(row["created_at"])
    refund_amount = int(row["amount"])
    # The payment's accrual says whether bonus value counted when it was made.
    eligible = refund_amount if paid.eligible == paid.amount else int(row["principal_amount"])
    async with transaction() as conn:
        membership = await points.lock_membership(conn, paid.membership_id)
        claimed = await _claim(
            conn,
            accrual_id=accrual_id,
            source_id=refund_id,
            kind="REFUND",
            membership=membership,
            payment_id=str(row["payment_id"]),
            store_id=paid.store_id,
            amount=-refund_amount,
            eligible=-eligible,
            occurred_at=occurred_at,
        )
        if not claimed:
            return 0
        pay_row = await PointsAccrual.filter(id=paid.id).using_db(conn).get()  # fresh, locked
        refunded = min(pay_row.eligible, pay_row.refunded_eligible + eligible)
        target = pay_row.points * refunded // pay_row.eligible if pay_row.eligible else 0
        take = target - pay_row.clawed_points
        await (
            PointsAccrual.filter(id=pay_row.id)
            .using_db(conn)
            .update(refunded_eligible=refunded, clawed_points=target)
        )
        await (
            Membership.filter(id=membership.id)
            .using_db(conn)
            .update(total_spend=membership.total_spend - refund_amount)
        )
        if take > 0:
            clawed = await points.claw_back(
                conn,
                membership,
                points=take,
                own_lot_id=pay_row.lot_id,
                reference=accrual_id,
            )
            await (
                PointsAccrual.filter(id=accrual_id)
                .using_db(conn)
                .update(
                    points=-take, transfer_id=clawed.transfer_id, debt_created=clawed.debt_created
                )
            )
            await points.record(
                conn,
                membership.id,
                kind="CLAWBACK",
                points=-take,
                reference=refund_id,
                transfer_id=clawed.transfer_id,
                detail={
                    "refundId": refund_id,
                    "paymentId": row["payment_id"],
                    "amount": refund_amount,
                    "debtCreated": clawed.debt_created,
                },
            )
    return 1


async def enrol_card_holder(row: dict[str, Any]) -> int:
    """A named card's holder becomes a member of the issuing merchant's programme."""
    programme = await _programme(str(row["merchant_id"]))
    if programme is None:
        return 0
    async with transaction() as conn:
        _, created = await enrol.ensure_membership(conn, programme, str(row["holder_id"]), "CARD")
    return int(created)


async def accrue_points(limit: int = 2000) -> int:
    """One pass over new card holders, payments and refunds; returns how many were accounted."""
    done = await _scan("cards", "card", NAMED_CARDS, enrol_card_holder, limit)
    done += await _scan("payments", "pay", PAYMENTS, accrue_payment, limit)
    done += await _scan("refunds", "rfd", REFUNDS, accrue_refund, limit)
    return done
