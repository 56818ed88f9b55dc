"""Points in the ledger: accounts, lots and the statement, inside the caller's transaction.

Accounts (asset POINTS; a membership's are `<membership id>:<kind>`, a programme's are
`<merchant id>:<kind>:<shard>`):

    member  POINTS_PENDING    earned, waiting out the return window       never negative
    member  POINTS_AVAILABLE  spendable                                   never negative
    member  POINTS_DEBT       minus what a refund took back that the member had already used
                              (never positive; while it is below zero the member holds nothing,
                              and every later credit pays it back first)
    programme POINTS_ISSUED / POINTS_ADJUSTED / POINTS_REDEEMED / POINTS_EXPIRED  (any sign)

A member's points are AVAILABLE + PENDING + DEBT. Each change is one transfer (one `post`), so
the accounts are locked once, in the ledger's order. Every function here expects the membership
row locked first (`lock_membership`): that serialises one member's points changes, keeps the
lots in step with the accounts, and makes the lock order membership -> accounts everywhere.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.clock import BEIJING_TIME
from domain.ids import new_id
from domain.ledger import service as ledger
from domain.members import errors
from domain.members.models import Membership, PointsActivity, PointsLot, PointsProgramme
from domain.outbox import service as outbox

AVAILABLE = "POINTS_AVAILABLE"
PENDING = "POINTS_PENDING"
DEBT = "POINTS_DEBT"
ISSUED = "POINTS_ISSUED"
ADJUSTED = "POINTS_ADJUSTED"
REDEEMED = "POINTS_REDEEMED"
EXPIRED = "POINTS_EXPIRED"
PROGRAMME_KINDS = (ISSUED, ADJUSTED, REDEEMED, EXPIRED)

OPEN = ("PENDING", "AVAILABLE")  # lot statuses that hold points


def member_accounts(membership_id: str) -> list[ledger.AccountSpec]:
    return [
        ledger.AccountSpec(membership_id, AVAILABLE, ledger.POINTS),
        ledger.AccountSpec(membership_id, PENDING, ledger.POINTS),
        ledger.AccountSpec(membership_id, DEBT, ledger.POINTS, allow_negative=True),
    ]


def programme_accounts(merchant_id: str) -> list[ledger.AccountSpec]:
    return [
        ledger.AccountSpec(merchant_id, kind, ledger.POINTS, allow_negative=True, sharded=True)
        for kind in PROGRAMME_KINDS
    ]


def account(membership_id: str, kind: str) -> str:
    return ledger.account_id(membership_id, kind)


def programme_account(membership: Membership, kind: str) -> str:
    """The programme's shard for this member: members spread over the shards, and one
    member's transactions always meet the same one, so a transaction that posts twice (sign-up
    bonus, then the first earning) never holds one shard while waiting for another."""
    shard = zlib.crc32(membership.id.encode()) % ledger.HOT_SHARDS
    return ledger.account_id(membership.merchant_id, kind, shard)


@dataclass(frozen=True)
class Position:
    available: int
    pending: int
    debt: int  # points owed, >= 0

    @property
    def net(self) -> int:
        return self.available + self.pending - self.debt


async def positions(conn: BaseDBAsyncClient, membership_ids: list[str]) -> dict[str, Position]:
    ids = [account(m, k) for m in membership_ids for k in (AVAILABLE, PENDING, DEBT)]
    got = await ledger.balances(conn, ids)
    return {
        m: Position(
            available=got.get(account(m, AVAILABLE), 0),
            pending=got.get(account(m, PENDING), 0),
            debt=-got.get(account(m, DEBT), 0),
        )
        for m in membership_ids
    }


async def position(conn: BaseDBAsyncClient, membership_id: str) -> Position:
    return (await positions(conn, [membership_id]))[membership_id]


async def lock_membership(conn: BaseDBAsyncClient, membership_id: str) -> Membership:
    query = Membership.filter(id=membership_id).using_db(conn)
    if conn.capabilities.dialect == "postgres":
        query = query.select_for_update()
    found = await query.first()
    if found is None:
        raise errors.membership_not_found()
    return found


def expiry_for(programme: PointsProgramme, earned_at: datetime) -> datetime | None:
    """When points earned at `earned_at` expire under the programme's policy."""
    if programme.expiry_mode == "DAYS" and programme.expiry_days:
        return earned_at + timedelta(days=programme.expiry_days)
    if programme.expiry_mode == "END_OF_NEXT_YEAR":
        year = (earned_at.astimezone(UTC) + BEIJING_TIME).year
        return datetime(year + 2, 1, 1, tzinfo=UTC) - BEIJING_TIME  # 1 Jan 00:00 Beijing
    return None


async def open_lots(conn: BaseDBAsyncClient, membership_id: str) -> list[PointsLot]:
    """Lots holding points, in the order they are used: soonest to expire, then oldest."""
    lots = await PointsLot.filter(membership_id=membership_id, status__in=OPEN).using_db(conn)
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(lots, key=lambda lot: (lot.expires_at or far, lot.earned_at, lot.id))


async def _take(conn: BaseDBAsyncClient, lots: list[PointsLot], points: int) -> dict[str, int]:
    """Use up to `points` from `lots` in order; returns what came from PENDING and AVAILABLE."""
    taken = {"PENDING": 0, "AVAILABLE": 0}
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take == 0:
            continue
        lot.remaining -= take
        taken[lot.status] += take
        left -= take
        await (
            PointsLot.filter(id=lot.id)
            .using_db(conn)
            .update(remaining=lot.remaining, status=lot.status if lot.remaining else "USED")
        )
    return taken


@dataclass(frozen=True)
class Credited:
    transfer_id: str
    debt_repaid: int
    lot_id: str | None


async def credit(
    conn: BaseDBAsyncClient,
    membership: Membership,
    programme: PointsProgramme,
    *,
    points: int,
    from_kind: str,
    transfer_kind: str,
    source: str,
    reference: str,
    earned_at: datetime,
    available_at: datetime,
) -> Credited:
    """Give points: an old debt is paid back first, the rest becomes a lot (PENDING until
    `available_at`, AVAILABLE from then)."""
    assert points > 0
    debt = (await position(conn, membership.id)).debt
    repay = min(points, debt)
    rest = points - repay
    postings = [(programme_account(membership, from_kind), -points)]
    if repay:
        postings.append((account(membership.id, DEBT), repay))
    lot_id = None
    if rest:
        status = "PENDING" if available_at > clock.now() else "AVAILABLE"
        postings.append(
            (account(membership.id, PENDING if status == "PENDING" else AVAILABLE), rest)
        )
        lot_id = new_id("plt")
        await PointsLot.create(
            using_db=conn,
            id=lot_id,
            membership_id=membership.id,
            source=source,
            reference=reference,
            points=rest,
            remaining=rest,
            status=status,
            earned_at=earned_at,
            available_at=available_at,
            expires_at=expiry_for(programme, earned_at),
        )
    posted = await ledger.post(
        conn, kind=transfer_kind, asset=ledger.POINTS, postings=postings, reference=reference
    )
    return Credited(posted.transfer_id, repay, lot_id)


async def spend(
    conn: BaseDBAsyncClient,
    membership: Membership,
    *,
    points: int,
    to_kind: str,
    transfer_kind: str,
    reference: str,
) -> str:
    """Use available points, soonest-expiring lots first; INSUFFICIENT_POINTS if short."""
    assert points > 0
    lots = [lot for lot in await open_lots(conn, membership.id) if lot.status == "AVAILABLE"]
    if sum(lot.remaining for lot in lots) < points:
        raise errors.insufficient_points()
    await _take(conn, lots, points)
    posted = await ledger.post(
        conn,
        kind=transfer_kind,
        asset=ledger.POINTS,
        postings=[
            (account(membership.id, AVAILABLE), -points),
            (programme_account(membership, to_kind), points),
        ],
        reference=reference,
    )
    return posted.transfer_id


@dataclass(frozen=True)
class ClawedBack:
    transfer_id: str
    debt_created: int


async def claw_back(
    conn: BaseDBAsyncClient,
    membership: Membership,
    *,
    points: int,
    own_lot_id: str | None,
    reference: str,
) -> ClawedBack:
    """Take back points a refunded payment earned: from its own lot while it lasts, then from
    whatever else the member holds (available, then pending), and what is still missing
    becomes debt. The member never goes below zero and never keeps refunded points."""
    assert points > 0
    lots = await open_lots(conn, membership.id)
    lots.sort(key=lambda lot: (lot.id != own_lot_id, lot.status != "AVAILABLE"))
    taken = await _take(conn, lots, points)
    debt = points - taken["AVAILABLE"] - taken["PENDING"]
    postings = [(programme_account(membership, ISSUED), points)]
    for kind, amount in ((AVAILABLE, taken["AVAILABLE"]), (PENDING, taken["PENDING"])):
        if amount:
            postings.append((account(membership.id, kind), -amount))
    if debt:
        postings.append((account(membership.id, DEBT), -debt))
    posted = await ledger.post(
        conn, kind="POINTS_CLAWBACK", asset=ledger.POINTS, postings=postings, reference=reference
    )
    return ClawedBack(posted.transfer_id, debt)


async def record(
    conn: BaseDBAsyncClient,
    membership_id: str,
    *,
    kind: str,
    points: int,
    reference: str | None,
    transfer_id: str | None,
    detail: dict[str, Any] | None = None,
) -> PointsActivity:
    """The statement line and the pointsChanged event, in the caller's transaction."""
    after = await position(conn, membership_id)
    now = clock.now()
    activity = await PointsActivity.create(
        using_db=conn,
        id=new_id("pta"),
        membership_id=membership_id,
        kind=kind,
        points=points,
        available_after=after.available,
        pending_after=after.pending,
        debt_after=after.debt,
        reference=reference,
        transfer_id=transfer_id,
        detail=detail or {},
        created_at=now,
    )
    await outbox.emit(
        conn,
        f"points:{membership_id}",
        {
            "kind": "POINTS_CHANGED",
            "membershipId": membership_id,
            "points": after.available,
            "pendingPoints": after.pending,
            "pointsDebt": after.debt,
            "delta": points,
            "reason": kind,
            "transactionId": transfer_id,
            "at": now.isoformat(),
        },
    )
    return activity
