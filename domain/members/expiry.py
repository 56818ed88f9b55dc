"""Jobs over points lots: pending points become available when their return window is over,
and lots past their expiry leave through the ledger (to the programme's POINTS_EXPIRED).

Each member is done in one transaction under the membership lock, choosing the lots again
inside it, so overlapping sweeps (or a redemption at the same moment) cannot move a lot twice.
"""

from __future__ import annotations

from tortoise.expressions import F

from domain import clock
from domain.db import connection, transaction
from domain.ledger import service as ledger
from domain.members import points
from domain.members.models import PointsLot


async def _due_members(status: tuple[str, ...], field: str, limit: int) -> list[str]:
    now = clock.now()
    rows = await (
        PointsLot.filter(status__in=status, **{f"{field}__lte": now})
        .using_db(connection())
        .order_by(field)
        .limit(limit)
        .values_list("membership_id", flat=True)
    )
    return list(dict.fromkeys(str(r) for r in rows))


async def mature_due(limit: int = 500) -> int:
    """PENDING lots whose return window is over become AVAILABLE; returns how many lots."""
    matured = 0
    for membership_id in await _due_members(("PENDING",), "available_at", limit):
        async with transaction() as conn:
            membership = await points.lock_membership(conn, membership_id)
            now = clock.now()
            lots = await PointsLot.filter(
                membership_id=membership.id, status="PENDING", available_at__lte=now
            ).using_db(conn)
            total = sum(lot.remaining for lot in lots)
            if not lots:
                continue
            await (
                PointsLot.filter(id__in=[lot.id for lot in lots], status="PENDING")
                .using_db(conn)
                .update(status="AVAILABLE")
            )
            matured += len(lots)
            if total == 0:
                continue
            posted = await ledger.post(
                conn,
                kind="POINTS_MATURE",
                asset=ledger.POINTS,
                postings=[
                    (points.account(membership.id, points.PENDING), -total),
                    (points.account(membership.id, points.AVAILABLE), total),
                ],
                reference=lots[0].id,
            )
            await points.record(
                conn,
                membership.id,
                kind="MATURE",
                points=0,
                reference=lots[0].id,
                transfer_id=posted.transfer_id,
                detail={"available": total, "lots": [lot.id for lot in lots]},
            )
    return matured


async def expire_due(limit: int = 500) -> int:
    """Lots past their expiry give up what they still hold; returns how many lots expired."""
    expired = 0
    for membership_id in await _due_members(points.OPEN, "expires_at", limit):
        async with transaction() as conn:
            membership = await points.lock_membership(conn, membership_id)
            now = clock.now()
            lots = await PointsLot.filter(
                membership_id=membership.id, status__in=points.OPEN, expires_at__lte=now
            ).using_db(conn)
            if not lots:
                continue
            gone = {
                status: sum(lot.remaining for lot in lots if lot.status == status)
                for status in points.OPEN
            }
            await (
                PointsLot.filter(id__in=[lot.id for lot in lots])
                .using_db(conn)
                .update(expired=F("expired") + F("remaining"), remaining=0, status="EXPIRED")
            )
            expired += len(lots)
            total = gone["PENDING"] + gone["AVAILABLE"]
            postings = [(points.programme_account(membership, points.EXPIRED), total)]
            for status, kind in (("AVAILABLE", points.AVAILABLE), ("PENDING", points.PENDING)):
                if gone[status]:
                    postings.append((points.account(membership.id, kind), -gone[status]))
            posted = await ledger.post(
                conn,
                kind="POINTS_EXPIRE",
                asset=ledger.POINTS,
                postings=postings,
                reference=lots[0].id,
            )
            await points.record(
                conn,
                membership.id,
                kind="EXPIRE",
                points=-total,
                reference=lots[0].id,
                transfer_id=posted.transfer_id,
                detail={"lots": [lot.id for lot in lots], **gone},
            )
    return expired
