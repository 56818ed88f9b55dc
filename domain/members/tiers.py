"""Tier rules (会员等级): a member qualifies for the highest-ranked tier whose threshold their
rolling 12 months reach (net spend, or net points earned by spending; a tier with neither
threshold is the entry tier). Upgrades happen at once and start a 12-month period; a lower tier
waits until the period ends (`review_due`), when the member gets what they then qualify for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.db import connection, transaction
from domain.ids import new_id
from domain.members import points
from domain.members.models import Membership, PointsAccrual, Tier, TierChange

PERIOD = timedelta(days=365)


async def tiers_of(conn: BaseDBAsyncClient, merchant_id: str) -> list[Tier]:
    return await Tier.filter(merchant_id=merchant_id).using_db(conn).order_by("rank")


def qualifies(tier: Tier, spend: int, earned: int) -> bool:
    if tier.min_spend_12m is None and tier.min_points_12m is None:
        return True
    return (tier.min_spend_12m is not None and spend >= tier.min_spend_12m) or (
        tier.min_points_12m is not None and earned >= tier.min_points_12m
    )


def qualified(tiers: Sequence[Tier], spend: int, earned: int) -> Tier | None:
    best = None
    for tier in tiers:  # ordered by rank
        if qualifies(tier, spend, earned):
            best = tier
    return best


async def last_twelve_months(
    conn: BaseDBAsyncClient, membership_id: str, now: datetime
) -> tuple[int, int]:
    """(net spend, net points earned by spending) over the last 12 months."""
    rows = await (
        PointsAccrual.filter(
            membership_id=membership_id,
            kind__in=("PAYMENT", "REFUND"),
            occurred_at__gte=now - PERIOD,
        )
        .using_db(conn)
        .values_list("amount", "points")
    )
    return sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows)


async def change_tier(
    conn: BaseDBAsyncClient,
    membership: Membership,
    tier: Tier | None,
    *,
    reason: str,
    now: datetime,
    note: str | None = None,
    actor_id: str | None = None,
) -> None:
    """Set the tier (a new 12-month period starts) and keep the history."""
    until = now + PERIOD if tier is not None else None
    new_id_ = tier.id if tier is not None else None
    await (
        Membership.filter(id=membership.id).using_db(conn).update(tier_id=new_id_, tier_until=until)
    )
    if new_id_ != membership.tier_id or reason == "MANUAL":
        await TierChange.create(
            using_db=conn,
            id=new_id("tch"),
            membership_id=membership.id,
            from_tier_id=membership.tier_id,
            to_tier_id=new_id_,
            reason=reason,
            note=note,
            actor_id=actor_id,
            created_at=now,
        )
    membership.tier_id, membership.tier_until = new_id_, until


async def upgrade_if_qualified(
    conn: BaseDBAsyncClient, membership: Membership, now: datetime
) -> None:
    """After earning: move up at once if the member now reaches a higher tier (locked row)."""
    tiers = await tiers_of(conn, membership.merchant_id)
    if not tiers:
        return
    spend, earned = await last_twelve_months(conn, membership.id, now)
    best = qualified(tiers, spend, earned)
    current = next((t for t in tiers if t.id == membership.tier_id), None)
    if best is not None and (current is None or best.rank > current.rank):
        await change_tier(conn, membership, best, reason="UPGRADE", now=now)


async def review_due(limit: int = 500) -> int:
    """Period ends: give each member whose period is over the tier they now qualify for (lower,
    the same, or none). Conditional on the period still being over, so sweeps may overlap."""
    now = clock.now()
    due = await (
        Membership.filter(tier_until__lte=now)
        .using_db(connection())
        .order_by("tier_until")
        .limit(limit)
        .values_list("id", flat=True)
    )
    changed = 0
    for membership_id in due:
        async with transaction() as conn:
            membership = await points.lock_membership(conn, str(membership_id))
            if membership.tier_until is None or membership.tier_until > now:
                continue
            tiers = await tiers_of(conn, membership.merchant_id)
            spend, earned = await last_twelve_months(conn, membership.id, now)
            best = qualified(tiers, spend, earned)
            await change_tier(conn, membership, best, reason="PERIOD_END", now=now)
            changed += 1
    return changed


@dataclass(frozen=True)
class Progress:
    spend_12m: int
    points_12m: int
    next_tier: Tier | None
    spend_to_next: int | None
    points_to_next: int | None


async def progress(membership: Membership) -> Progress:
    conn = connection()
    tiers = await tiers_of(conn, membership.merchant_id)
    spend, earned = await last_twelve_months(conn, membership.id, clock.now())
    current = next((t for t in tiers if t.id == membership.tier_id), None)
    above = [t for t in tiers if current is None or t.rank > current.rank]
    nxt = above[0] if above else None
    return Progress(
        spend_12m=spend,
        points_12m=earned,
        next_tier=nxt,
        spend_to_next=max(0, nxt.min_spend_12m - spend)
        if nxt is not None and nxt.min_spend_12m is not None
        else None,
        points_to_next=max(0, nxt.min_points_12m - earned)
        if nxt is not None and nxt.min_points_12m is not None
        else None,
    )
