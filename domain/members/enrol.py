"""Becoming a member: by opting in, by holding a named card, or by paying (支付即会员).

However it happens, it happens once per consumer and programme (unique merchant + user), opens
the member's points accounts, credits the sign-up bonus (once: its accrual's source is the
membership) and puts the member on the entry tier, all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.ids import new_id
from domain.ledger import service as ledger
from domain.members import points, tiers
from domain.members import rules as engine
from domain.members.models import Membership, PointsAccrual, PointsProgramme, PointsRule
from domain.sql import fetch


def rule_of(row: PointsRule) -> engine.Rule:
    return engine.Rule(
        id=row.id,
        name=row.name,
        kind=row.kind,
        points_per_yuan=row.points_per_yuan,
        bonus_points=row.bonus_points,
        min_amount=row.min_amount,
        store_ids=tuple(row.store_ids or ()),
        tier_ids=tuple(row.tier_ids or ()),
        weekdays=tuple(row.weekdays or ()),
        minute_from=row.minute_from,
        minute_to=row.minute_to,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        birthday_month_only=row.birthday_month_only,
        daily_cap=row.daily_cap,
        apply_tier_multiplier=row.apply_tier_multiplier,
        active=row.active,
    )


async def rules_of(conn: BaseDBAsyncClient, merchant_id: str) -> list[engine.Rule]:
    rows = (
        await PointsRule.filter(merchant_id=merchant_id, active=True).using_db(conn).order_by("id")
    )
    return [rule_of(r) for r in rows]


async def ensure_programme(conn: BaseDBAsyncClient, merchant_id: str) -> PointsProgramme:
    """The merchant's programme, started with defaults on first use (idempotent)."""
    now = clock.now()
    rows = await fetch(
        conn,
        "INSERT INTO points_programmes (merchant_id, pending_days, expiry_mode, expiry_days,"
        " earn_on_bonus, created_at, updated_at) VALUES ($1, 7, 'END_OF_NEXT_YEAR', NULL, $2,"
        " $3, $3) ON CONFLICT (merchant_id) DO NOTHING RETURNING merchant_id",
        merchant_id,
        False,
        now,
    )
    if rows:
        await ledger.open_accounts(conn, points.programme_accounts(merchant_id))
    return await PointsProgramme.filter(merchant_id=merchant_id).using_db(conn).get()


async def ensure_membership(
    conn: BaseDBAsyncClient,
    programme: PointsProgramme,
    user_id: str,
    source: str,
    at: datetime | None = None,
) -> tuple[Membership, bool]:
    """The consumer's membership, created if they have none yet; (membership, created)."""
    now = clock.now()
    rows = await fetch(
        conn,
        "INSERT INTO memberships (id, merchant_id, user_id, source, total_spend, visits,"
        " marketing_consent, created_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $6)"
        " ON CONFLICT (merchant_id, user_id) DO NOTHING RETURNING id",
        new_id("mbr"),
        programme.merchant_id,
        user_id,
        source,
        False,
        at or now,
    )
    membership = (
        await Membership.filter(merchant_id=programme.merchant_id, user_id=user_id)
        .using_db(conn)
        .get()
    )
    if not rows:
        return membership, False
    await ledger.open_accounts(conn, points.member_accounts(membership.id))
    membership = await points.lock_membership(conn, membership.id)
    await _signup_bonus(conn, programme, membership, now)
    await tiers.upgrade_if_qualified(conn, membership, now)
    return membership, True


async def _signup_bonus(
    conn: BaseDBAsyncClient, programme: PointsProgramme, membership: Membership, now: datetime
) -> None:
    fired = [f for f in engine.signup_points(await rules_of(conn, programme.merchant_id), now)]
    total = sum(f.points for f in fired)
    if total <= 0:
        return
    accrual_id = new_id("pac")
    credited = await points.credit(
        conn,
        membership,
        programme,
        points=total,
        from_kind=points.ISSUED,
        transfer_kind="POINTS_SIGNUP",
        source="SIGNUP",
        reference=accrual_id,
        earned_at=now,
        available_at=now,
    )
    await PointsAccrual.create(
        using_db=conn,
        id=accrual_id,
        source_id=membership.id,
        kind="SIGNUP",
        membership_id=membership.id,
        merchant_id=membership.merchant_id,
        points=total,
        debt_repaid=credited.debt_repaid,
        fired=[f.as_dict() for f in fired],
        lot_id=credited.lot_id,
        transfer_id=credited.transfer_id,
        occurred_at=now,
        created_at=now,
    )
    await points.record(
        conn,
        membership.id,
        kind="SIGNUP",
        points=total,
        reference=accrual_id,
        transfer_id=credited.transfer_id,
        detail={"rules": [f.as_dict() for f in fired]},
    )
