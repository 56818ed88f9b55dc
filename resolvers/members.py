"""Members, tiers, points and rewards: input -> domain call, object checks and loaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from strawberry.dataloader import DataLoader

from domain.actor import Role
from domain.db import connection
from domain.errors import DomainError, forbidden
from domain.identity.models import User
from domain.members import catalogue, points, redeem, tiers
from domain.members import service as members
from domain.members.models import (
    MemberProfile,
    Membership,
    PointsActivity,
    PointsProgramme,
    PointsRule,
    Redemption,
    Reward,
    Tier,
    TierChange,
)
from resolvers.context import Context
from resolvers.pagination import Page, paginate

# --- mutations --------------------------------------------------------------------------------


async def membership_join(ctx: Context, merchant_id: str, consent: bool | None) -> Membership:
    return await members.join(ctx.require_viewer(), merchant_id, consent)


async def programme_update(ctx: Context, merchant_id: str, data: dict[str, Any]) -> PointsProgramme:
    return await catalogue.update_programme(ctx.require_viewer(), merchant_id, **data)


async def tier_create(ctx: Context, merchant_id: str, data: dict[str, Any]) -> Tier:
    return await catalogue.create_tier(ctx.require_viewer(), merchant_id, **data)


async def tier_update(ctx: Context, tier_id: str, data: dict[str, Any]) -> Tier:
    return await catalogue.update_tier(ctx.require_viewer(), tier_id, **data)


async def rule_create(ctx: Context, merchant_id: str, data: dict[str, Any]) -> PointsRule:
    return await catalogue.create_rule(ctx.require_viewer(), merchant_id, **data)


async def rule_update(ctx: Context, rule_id: str, data: dict[str, Any]) -> PointsRule:
    return await catalogue.update_rule(ctx.require_viewer(), rule_id, **data)


async def reward_create(ctx: Context, merchant_id: str, data: dict[str, Any]) -> Reward:
    return await catalogue.create_reward(ctx.require_viewer(), merchant_id, **data)


async def reward_update(ctx: Context, reward_id: str, data: dict[str, Any]) -> Reward:
    return await catalogue.update_reward(ctx.require_viewer(), reward_id, **data)


async def points_adjust(ctx: Context, data: dict[str, Any]) -> Membership:
    return await members.adjust_points(ctx.require_viewer(), **data)


async def tier_assign(ctx: Context, data: dict[str, Any]) -> Membership:
    return await members.assign_tier(ctx.require_viewer(), **data)


async def redeem_reward(ctx: Context, reward_id: str, key: str) -> Redemption:
    return await redeem.redeem(ctx.require_viewer(), reward_id=reward_id, idempotency_key=key)


async def profile_update(ctx: Context, data: dict[str, Any]) -> MemberProfile:
    return await members.update_profile(ctx.require_viewer(), **data)


# --- queries ----------------------------------------------------------------------------------


async def my_memberships(ctx: Context) -> list[Membership]:
    return await members.my_memberships(ctx.require_viewer())


async def my_profile(ctx: Context) -> MemberProfile | None:
    return await members.profile_of(ctx.require_viewer().id)


async def membership(ctx: Context, membership_id: str) -> Membership | None:
    try:
        return await members.get_membership_for(ctx.require_viewer(), membership_id)
    except DomainError:
        return None


async def member_list(
    ctx: Context, merchant_id: str, first: int | None, after: str | None, filters: dict[str, Any]
) -> Page[Membership]:
    query = await members.members_query(ctx.require_viewer(), merchant_id, **filters)
    return await paginate(query, first, after, ctx.max_page_size)


async def programme(ctx: Context, merchant_id: str) -> PointsProgramme | None:
    """Consumers see any programme (it is what a merchant offers them); staff their own."""
    viewer = ctx.require_viewer()
    if viewer.role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) and not viewer.is_staff_of(
        merchant_id
    ):
        raise forbidden("Not your merchant")
    return await catalogue.get_programme(merchant_id)


def _sees_everything(ctx: Context, merchant_id: str) -> bool:
    viewer = ctx.require_viewer()
    return viewer.role == Role.OPERATOR or viewer.is_staff_of(merchant_id)


async def tiers_of(merchant_id: str) -> list[Tier]:
    return await tiers.tiers_of(connection(), merchant_id)


async def rules_of(ctx: Context, merchant_id: str) -> list[PointsRule]:
    query = PointsRule.filter(merchant_id=merchant_id)
    if not _sees_everything(ctx, merchant_id):
        query = query.filter(active=True)
    return await query.order_by("id").limit(200)


async def rewards_of(ctx: Context, merchant_id: str) -> list[Reward]:
    return await catalogue.rewards_of(merchant_id, everything=_sees_everything(ctx, merchant_id))


async def points_history(
    ctx: Context, m: Membership, first: int | None, after: str | None
) -> Page[PointsActivity]:
    return await paginate(members.history_query(m), first, after, ctx.max_page_size)


async def redemptions_of(m: Membership) -> list[Redemption]:
    return await Redemption.filter(membership_id=m.id).order_by("-id").limit(100)


async def tier_history(m: Membership) -> list[TierChange]:
    return await members.tier_history(m)


async def progress(m: Membership) -> tiers.Progress:
    return await tiers.progress(m)


def _loader(ctx: Context, name: str, load: Any) -> DataLoader[str, Any]:
    loader = ctx.loaders.get(name)
    if loader is None:
        loader = DataLoader(load_fn=load)
        ctx.loaders[name] = loader
    return loader  # type: ignore[no-any-return,unused-ignore]


async def position(ctx: Context, membership_id: str) -> points.Position:
    async def load(ids: list[str]) -> list[points.Position]:
        got = await points.positions(connection(), ids)
        return [got[i] for i in ids]

    found: points.Position = await _loader(ctx, "points_positions", load).load(membership_id)
    return found


async def tier(ctx: Context, tier_id: str | None) -> Tier | None:
    if tier_id is None:
        return None

    async def load(ids: list[str]) -> list[Tier | None]:
        rows = {t.id: t for t in await Tier.filter(id__in=ids)}
        return [rows.get(i) for i in ids]

    found: Tier | None = await _loader(ctx, "tiers", load).load(tier_id)
    return found


async def reward(ctx: Context, reward_id: str) -> Reward | None:
    async def load(ids: list[str]) -> list[Reward | None]:
        rows = {r.id: r for r in await Reward.filter(id__in=ids)}
        return [rows.get(i) for i in ids]

    found: Reward | None = await _loader(ctx, "rewards", load).load(reward_id)
    return found


async def member(ctx: Context, user_id: str) -> tuple[User | None, MemberProfile | None]:
    async def users(ids: list[str]) -> list[User | None]:
        rows = {u.id: u for u in await User.filter(id__in=ids)}
        return [rows.get(i) for i in ids]

    async def profiles(ids: list[str]) -> list[MemberProfile | None]:
        rows = {p.user_id: p for p in await MemberProfile.filter(user_id__in=ids)}
        return [rows.get(i) for i in ids]

    user = await _loader(ctx, "member_users", users).load(user_id)
    profile = await _loader(ctx, "member_profiles", profiles).load(user_id)
    return user, profile


async def points_events(ctx: Context, membership_id: str) -> AsyncIterator[dict[str, Any]]:
    """The member only: not even the merchant's staff hear a member's points live."""
    viewer = ctx.require_viewer()
    found = await Membership.get_or_none(id=membership_id)
    if found is None or found.user_id != viewer.id:
        raise forbidden("You may not watch this membership")
    seen: set[int] = set()
    async for message in ctx.broker.subscribe(f"points:{membership_id}"):
        event_id = int(message.get("eventId", 0))  # the relay publishes at least once
        if event_id in seen:
            continue
        seen.add(event_id)
        if len(seen) > 10_000:
            seen.clear()
        yield message
