"""A merchant's programme: settings, tiers (会员等级), earning rules and the catalogue."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.members import models
from resolvers import members as resolve
from schema.errors import UserError, mutate
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


@strawberry.enum(description="How earned points expire.")
class ExpiryMode(Enum):
    NONE = "NONE"
    DAYS = "DAYS"
    END_OF_NEXT_YEAR = "END_OF_NEXT_YEAR"


@strawberry.enum(
    description="SPEND: on every qualifying payment. FIRST_PURCHASE: on the member's first"
    " payment. SIGNUP: bonusPoints when a consumer becomes a member."
)
class PointsRuleKind(Enum):
    SPEND = "SPEND"
    FIRST_PURCHASE = "FIRST_PURCHASE"
    SIGNUP = "SIGNUP"


def _hhmm(minutes: int | None) -> str | None:
    return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


@strawberry.type(description="A level of a merchant's programme.")
class Tier:
    id: strawberry.ID
    merchant_id: strawberry.ID
    name: str
    rank: int = strawberry.field(description="Higher is better.")
    min_spend_12m: Fen | None = strawberry.field(description="Net spend over 12 months.")
    min_points: int | None = strawberry.field(description="Points earned over 12 months.")
    discount_percent: int = strawberry.field(description="Percent off for members (5 = 5%).")
    points_multiplier_percent: int = strawberry.field(description="150 = 1.5x points.")

    @classmethod
    def from_model(cls, t: models.Tier) -> Tier:
        return cls(
            id=strawberry.ID(t.id),
            merchant_id=strawberry.ID(t.merchant_id),
            name=t.name,
            rank=t.rank,
            min_spend_12m=Fen(t.min_spend_12m) if t.min_spend_12m is not None else None,
            min_points=t.min_points_12m,
            discount_percent=t.discount_percent,
            points_multiplier_percent=t.points_multiplier_percent,
        )


@strawberry.type(description="An earning rule; every matching rule fires and points add up.")
class PointsRule:
    id: strawberry.ID
    merchant_id: strawberry.ID
    name: str
    kind: PointsRuleKind
    points_per_yuan: int
    bonus_points: int
    min_amount: Fen | None
    store_ids: list[strawberry.ID]
    tier_ids: list[strawberry.ID]
    weekdays: list[int] = strawberry.field(description="ISO weekdays, 1 = Monday; empty = all.")
    time_from: str | None = strawberry.field(description="HH:MM Beijing time.")
    time_to: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    birthday_month_only: bool
    daily_cap: int | None = strawberry.field(description="Points per member per day.")
    apply_tier_multiplier: bool
    active: bool

    @classmethod
    def from_model(cls, r: models.PointsRule) -> PointsRule:
        return cls(
            id=strawberry.ID(r.id),
            merchant_id=strawberry.ID(r.merchant_id),
            name=r.name,
            kind=PointsRuleKind(r.kind),
            points_per_yuan=r.points_per_yuan,
            bonus_points=r.bonus_points,
            min_amount=Fen(r.min_amount) if r.min_amount is not None else None,
            store_ids=[strawberry.ID(s) for s in r.store_ids or []],
            tier_ids=[strawberry.ID(t) for t in r.tier_ids or []],
            weekdays=list(r.weekdays or []),
            time_from=_hhmm(r.minute_from),
            time_to=_hhmm(r.minute_to),
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            birthday_month_only=r.birthday_month_only,
            daily_cap=r.daily_cap,
            apply_tier_multiplier=r.apply_tier_multiplier,
            active=r.active,
        )


@strawberry.type(description="A catalogue item priced in points.")
class Reward:
    id: strawberry.ID
    merchant_id: strawberry.ID
    name: str
    description: str | None
    points_cost: int
    stock: int | None = strawberry.field(description="Left to redeem; null = unlimited.")
    redeemed_count: int
    per_member_limit: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool

    @classmethod
    def from_model(cls, r: models.Reward) -> Reward:
        return cls(
            id=strawberry.ID(r.id),
            merchant_id=strawberry.ID(r.merchant_id),
            name=r.name,
            description=r.description,
            points_cost=int(r.points_cost),
            stock=r.stock,
            redeemed_count=r.redeemed_count,
            per_member_limit=r.per_member_limit,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            active=r.active,
        )


@strawberry.type(description="A merchant's membership programme.")
class LoyaltyProgramme:
    merchant_id: strawberry.ID
    pending_days: int = strawberry.field(description="Return window before points are usable.")
    expiry_mode: ExpiryMode
    expiry_days: int | None
    earn_on_bonus: bool = strawberry.field(description="Does spending 赠送金 earn points.")
    created_at: datetime

    @strawberry.field(description="By rank.")
    async def tiers(self) -> list[Tier]:
        return [Tier.from_model(t) for t in await resolve.tiers_of(self.merchant_id)]

    @strawberry.field(description="Active rules (all of them for the merchant's staff).")
    async def points_rules(self, info: Info) -> list[PointsRule]:
        rows = await resolve.rules_of(info.context, self.merchant_id)
        return [PointsRule.from_model(r) for r in rows]

    @strawberry.field(description="What can be redeemed now (everything for the merchant).")
    async def rewards(self, info: Info) -> list[Reward]:
        rows = await resolve.rewards_of(info.context, self.merchant_id)
        return [Reward.from_model(r) for r in rows]

    @classmethod
    def from_model(cls, p: models.PointsProgramme) -> LoyaltyProgramme:
        return cls(
            merchant_id=strawberry.ID(p.merchant_id),
            pending_days=p.pending_days,
            expiry_mode=ExpiryMode(p.expiry_mode),
            expiry_days=p.expiry_days,
            earn_on_bonus=p.earn_on_bonus,
            created_at=p.created_at,
        )


# --- inputs -----------------------------------------------------------------------------------


@strawberry.input
class LoyaltyProgrammeUpdateInput:
    merchant_id: strawberry.ID
    pending_days: int | None = None
    expiry_mode: ExpiryMode | None = None
    expiry_days: int | None = None
    earn_on_bonus: bool | None = None


@strawberry.input
class TierCreateInput:
    merchant_id: strawberry.ID
    name: str
    rank: int
    min_spend_12m: Fen | None = None
    min_points: int | None = None
    discount_percent: int | None = None
    points_multiplier_percent: int | None = strawberry.field(default=None, description="150 = 1.5x")


@strawberry.input
class TierUpdateInput:
    tier_id: strawberry.ID
    name: str | None = None
    rank: int | None = None
    min_spend_12m: Fen | None = None
    min_points: int | None = None
    discount_percent: int | None = None
    points_multiplier_percent: int | None = None


@strawberry.input
class PointsRuleCreateInput:
    merchant_id: strawberry.ID
    name: str
    points_per_yuan: int
    min_amount: Fen | None = None
    store_ids: list[strawberry.ID] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    kind: PointsRuleKind = PointsRuleKind.SPEND
    bonus_points: int | None = None
    weekdays: list[int] | None = strawberry.field(default=None, description="1 = Monday")
    time_from: str | None = strawberry.field(default=None, description="HH:MM Beijing time")
    time_to: str | None = strawberry.field(default=None, description="may wrap past midnight")
    tier_ids: list[strawberry.ID] | None = None
    birthday_month_only: bool | None = None
    daily_cap: int | None = None
    apply_tier_multiplier: bool | None = None


@strawberry.input
class PointsRuleUpdateInput:
    rule_id: strawberry.ID
    name: str | None = None
    points_per_yuan: int | None = None
    bonus_points: int | None = None
    min_amount: Fen | None = None
    daily_cap: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    birthday_month_only: bool | None = None
    apply_tier_multiplier: bool | None = None
    active: bool | None = None


@strawberry.input
class RewardCreateInput:
    merchant_id: strawberry.ID
    name: str
    points_cost: int
    stock: int | None = strawberry.field(default=None, description="null = unlimited")
    per_member_limit: int | None = None
    description: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@strawberry.input
class RewardUpdateInput:
    reward_id: strawberry.ID
    name: str | None = None
    description: str | None = None
    points_cost: int | None = None
    per_member_limit: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool | None = None
    add_stock: int | None = strawberry.field(default=None, description="Restock by this many.")


# --- payloads ---------------------------------------------------------------------------------


@strawberry.type
class LoyaltyProgrammePayload:
    loyalty_programme: LoyaltyProgramme | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TierPayload:
    tier: Tier | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PointsRulePayload:
    points_rule: PointsRule | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RewardPayload:
    reward: Reward | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _fields(obj: Any, *skip: str) -> dict[str, Any]:
    """An input's fields as domain keyword arguments (enums by value)."""
    out = {}
    for name, value in vars(obj).items():
        if name in skip:
            continue
        out[name] = value.value if isinstance(value, Enum) else value
    return out


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def loyalty_programme_update(
        self, info: Info, input: LoyaltyProgrammeUpdateInput
    ) -> LoyaltyProgrammePayload:
        call = resolve.programme_update(
            info.context, input.merchant_id, _fields(input, "merchant_id")
        )
        return await mutate(
            info,
            LoyaltyProgrammePayload,
            call,
            lambda p: {"loyalty_programme": LoyaltyProgramme.from_model(p)},
        )

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def tier_create(self, info: Info, input: TierCreateInput) -> TierPayload:
        call = resolve.tier_create(info.context, input.merchant_id, _fields(input, "merchant_id"))
        return await mutate(info, TierPayload, call, lambda t: {"tier": Tier.from_model(t)})

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def tier_update(self, info: Info, input: TierUpdateInput) -> TierPayload:
        call = resolve.tier_update(info.context, input.tier_id, _fields(input, "tier_id"))
        return await mutate(info, TierPayload, call, lambda t: {"tier": Tier.from_model(t)})

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def points_rule_create(
        self, info: Info, input: PointsRuleCreateInput
    ) -> PointsRulePayload:
        call = resolve.rule_create(info.context, input.merchant_id, _fields(input, "merchant_id"))
        return await mutate(
            info, PointsRulePayload, call, lambda r: {"points_rule": PointsRule.from_model(r)}
        )

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def points_rule_update(
        self, info: Info, input: PointsRuleUpdateInput
    ) -> PointsRulePayload:
        call = resolve.rule_update(info.context, input.rule_id, _fields(input, "rule_id"))
        return await mutate(
            info, PointsRulePayload, call, lambda r: {"points_rule": PointsRule.from_model(r)}
        )

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def reward_create(self, info: Info, input: RewardCreateInput) -> RewardPayload:
        call = resolve.reward_create(info.context, input.merchant_id, _fields(input, "merchant_id"))
        return await mutate(info, RewardPayload, call, lambda r: {"reward": Reward.from_model(r)})

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN))
    async def reward_update(self, info: Info, input: RewardUpdateInput) -> RewardPayload:
        call = resolve.reward_update(info.context, input.reward_id, _fields(input, "reward_id"))
        return await mutate(info, RewardPayload, call, lambda r: {"reward": Reward.from_model(r)})


@strawberry.type
class LoyaltyQuery:
    @strawberry.field(
        extensions=allow(R.CONSUMER, *STAFF, R.OPERATOR),
        description="A merchant's programme: tiers, earning rules, catalogue.",
    )
    async def loyalty_programme(
        self, info: Info, merchant_id: strawberry.ID
    ) -> LoyaltyProgramme | None:
        row = await resolve.programme(info.context, merchant_id)
        return LoyaltyProgramme.from_model(row) if row else None
