"""Members (会员), their points (积分) and redemptions (积分兑换); the programme's own setup is in
schema/loyalty.py (its mutations and query are merged in here)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.identity.secrets import mask_phone
from domain.members import models
from resolvers import members as resolve
from resolvers import merchants as merchants_resolve
from schema.common import Connection
from schema.errors import UserError, mutate
from schema.loyalty import LoyaltyMutation, LoyaltyQuery, Reward, Tier, _fields
from schema.merchants import Merchant
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


@strawberry.type(description="An earning rule that fired, and why.")
class FiredRule:
    rule_id: strawberry.ID
    name: str
    kind: str
    points: int
    why: str
    capped: bool


@strawberry.type(description="One line of a member's points statement.")
class PointsTransaction:
    id: strawberry.ID
    type: str = strawberry.field(
        description="EARN SIGNUP CLAWBACK REDEEM EXPIRE ADJUST MATURE (pending became usable)"
    )
    points: int = strawberry.field(description="Signed change of the member's points.")
    available_after: int
    pending_after: int
    debt_after: int
    reference: strawberry.ID | None = strawberry.field(description="Payment, refund, ...")
    transaction_id: strawberry.ID | None
    rules: list[FiredRule] = strawberry.field(description="EARN/SIGNUP: the rules that fired.")
    reason: str | None = strawberry.field(description="ADJUST: the merchant's reason.")
    created_at: datetime

    @classmethod
    def from_model(cls, a: models.PointsActivity) -> PointsTransaction:
        detail = a.detail or {}
        return cls(
            id=strawberry.ID(a.id),
            type=a.kind,
            points=int(a.points),
            available_after=int(a.available_after),
            pending_after=int(a.pending_after),
            debt_after=int(a.debt_after),
            reference=strawberry.ID(a.reference) if a.reference else None,
            transaction_id=strawberry.ID(a.transfer_id) if a.transfer_id else None,
            rules=[
                FiredRule(
                    rule_id=strawberry.ID(str(f["ruleId"])),
                    name=str(f["name"]),
                    kind=str(f["kind"]),
                    points=int(f["points"]),
                    why=str(f["why"]),
                    capped=bool(f.get("capped")),
                )
                for f in detail.get("rules", [])
            ],
            reason=detail.get("reason"),
            created_at=a.created_at,
        )


@strawberry.type(description="Where the member stands against the next tier (rolling 12 months).")
class TierProgress:
    spend_12m: Fen
    points_12m: int
    next_tier: Tier | None
    spend_to_next: Fen | None
    points_to_next: int | None


@strawberry.type(description="A change of a member's tier.")
class TierChange:
    id: strawberry.ID
    from_tier_id: strawberry.ID | None
    to_tier_id: strawberry.ID | None
    reason: str = strawberry.field(description="UPGRADE, PERIOD_END or MANUAL")
    note: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, c: models.TierChange) -> TierChange:
        return cls(
            id=strawberry.ID(c.id),
            from_tier_id=strawberry.ID(c.from_tier_id) if c.from_tier_id else None,
            to_tier_id=strawberry.ID(c.to_tier_id) if c.to_tier_id else None,
            reason=c.reason,
            note=c.note,
            created_at=c.created_at,
        )


@strawberry.type(description="积分兑换: a reward redeemed for points.")
class Redemption:
    id: strawberry.ID
    reward_id: strawberry.ID
    membership_id: strawberry.ID
    points: int
    status: str
    created_at: datetime

    @strawberry.field
    async def reward(self, info: Info) -> Reward | None:
        row = await resolve.reward(info.context, self.reward_id)
        return Reward.from_model(row) if row else None

    @classmethod
    def from_model(cls, r: models.Redemption) -> Redemption:
        return cls(
            id=strawberry.ID(r.id),
            reward_id=strawberry.ID(r.reward_id),
            membership_id=strawberry.ID(r.membership_id),
            points=int(r.points),
            status=r.status,
            created_at=r.created_at,
        )


@strawberry.type(description="A member's profile; real-name data is only ever shown masked.")
class MemberProfile:
    nickname: str | None
    birthday: date | None
    masked_phone: str | None
    real_name_masked: str | None
    id_number_masked: str | None = strawberry.field(description="110***********1234")
    personal_data_consent: bool

    @classmethod
    def of(cls, phone: str | None, p: models.MemberProfile | None) -> MemberProfile:
        return cls(
            nickname=p.nickname if p else None,
            birthday=p.birthday if p else None,
            masked_phone=mask_phone(phone),
            real_name_masked=p.real_name_masked if p else None,
            id_number_masked=p.id_number_masked if p else None,
            personal_data_consent=bool(p and p.personal_data_consent_at),
        )


@strawberry.type(description="A consumer's membership of a merchant's programme.")
class Membership:
    id: strawberry.ID
    merchant_id: strawberry.ID
    user_id: strawberry.ID
    tier_id: strawberry.ID | None
    source: str = strawberry.field(description="How they joined: OPT_IN, CARD or PAYMENT.")
    tier_until: datetime | None = strawberry.field(description="The tier holds until then.")
    total_spend: Fen = strawberry.field(description="Net spend since joining.")
    visits: int
    last_visit_at: datetime | None
    marketing_consent: bool
    joined_at: datetime
    _model: strawberry.Private[models.Membership]

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant:
        row = await merchants_resolve.merchant_of(info.context, self.merchant_id)
        assert row is not None
        return Merchant.from_model(row)

    @strawberry.field(description="Available (usable) points.")
    async def points(self, info: Info) -> int:
        return (await resolve.position(info.context, self.id)).available

    @strawberry.field(description="Points waiting out the return window.")
    async def pending_points(self, info: Info) -> int:
        return (await resolve.position(info.context, self.id)).pending

    @strawberry.field(description="Points owed after refunds of spent points; paid first.")
    async def points_debt(self, info: Info) -> int:
        return (await resolve.position(info.context, self.id)).debt

    @strawberry.field
    async def tier(self, info: Info) -> Tier | None:
        row = await resolve.tier(info.context, self.tier_id)
        return Tier.from_model(row) if row else None

    @strawberry.field
    async def tier_progress(self) -> TierProgress:
        p = await resolve.progress(self._model)
        return TierProgress(
            spend_12m=Fen(p.spend_12m),
            points_12m=p.points_12m,
            next_tier=Tier.from_model(p.next_tier) if p.next_tier else None,
            spend_to_next=Fen(p.spend_to_next) if p.spend_to_next is not None else None,
            points_to_next=p.points_to_next,
        )

    @strawberry.field(description="Newest first.")
    async def points_history(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[PointsTransaction]:
        page = await resolve.points_history(info.context, self._model, first, after)
        return Connection.of(page, PointsTransaction.from_model)

    @strawberry.field(description="Newest first.")
    async def redemptions(self) -> list[Redemption]:
        return [Redemption.from_model(r) for r in await resolve.redemptions_of(self._model)]

    @strawberry.field(description="Newest first.")
    async def tier_history(self) -> list[TierChange]:
        return [TierChange.from_model(c) for c in await resolve.tier_history(self._model)]

    @strawberry.field(description="The member's profile (masked).")
    async def member(self, info: Info) -> MemberProfile:
        user, profile = await resolve.member(info.context, self.user_id)
        return MemberProfile.of(user.phone if user else None, profile)

    @classmethod
    def from_model(cls, m: models.Membership) -> Membership:
        return cls(
            id=strawberry.ID(m.id),
            merchant_id=strawberry.ID(m.merchant_id),
            user_id=strawberry.ID(m.user_id),
            tier_id=strawberry.ID(m.tier_id) if m.tier_id else None,
            source=m.source,
            tier_until=m.tier_until,
            total_spend=Fen(m.total_spend),
            visits=m.visits,
            last_visit_at=m.last_visit_at,
            marketing_consent=m.marketing_consent,
            joined_at=m.created_at,
            _model=m,
        )


@strawberry.type(description="A committed change of a member's points.")
class PointsEvent:
    membership_id: strawberry.ID
    points: int
    pending_points: int
    points_debt: int
    delta: int
    reason: str
    transaction_id: strawberry.ID | None
    at: datetime


# --- inputs -----------------------------------------------------------------------------------


@strawberry.input
class MembershipJoinInput:
    merchant_id: strawberry.ID
    marketing_consent: bool | None = None


@strawberry.input
class PointsAdjustInput:
    membership_id: strawberry.ID
    points: int = strawberry.field(description="Signed: a credit pays any debt first.")
    reason: str
    idempotency_key: str


@strawberry.input
class RedeemInput:
    reward_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class MemberTierAssignInput:
    membership_id: strawberry.ID
    tier_id: strawberry.ID | None = strawberry.field(description="null: no tier")
    reason: str


@strawberry.input
class MemberProfileUpdateInput:
    nickname: str | None = None
    birthday: date | None = None
    real_name: str | None = None
    id_number: str | None = strawberry.field(default=None, description="Stored encrypted.")
    personal_data_consent: bool | None = strawberry.field(
        default=None, description="Needed for real-name data; false erases it."
    )


# --- payloads ---------------------------------------------------------------------------------


@strawberry.type
class MembershipPayload:
    membership: Membership | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RedemptionPayload:
    redemption: Redemption | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberProfilePayload:
    member_profile: MemberProfile | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _membership(m: models.Membership) -> dict[str, Any]:
    return {"membership": Membership.from_model(m)}


@strawberry.type
class MemberMutation(LoyaltyMutation):
    @strawberry.mutation(extensions=allow(R.CONSUMER), description="Join (idempotent).")
    async def membership_join(self, info: Info, input: MembershipJoinInput) -> MembershipPayload:
        call = resolve.membership_join(info.context, input.merchant_id, input.marketing_consent)
        return await mutate(info, MembershipPayload, call, _membership)

    @strawberry.mutation(extensions=allow(R.CONSUMER))
    async def member_profile_update(
        self, info: Info, input: MemberProfileUpdateInput
    ) -> MemberProfilePayload:
        async def call() -> MemberProfile:
            row = await resolve.profile_update(info.context, _fields(input))
            user, profile = await resolve.member(info.context, row.user_id)
            return MemberProfile.of(user.phone if user else None, profile)

        return await mutate(info, MemberProfilePayload, call(), lambda p: {"member_profile": p})

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN), description="Manual points, reason required, audited."
    )
    async def points_adjust(self, info: Info, input: PointsAdjustInput) -> MembershipPayload:
        data = {
            "membership_id": input.membership_id,
            "points_delta": input.points,
            "reason": input.reason,
            "idempotency_key": input.idempotency_key,
        }
        return await mutate(
            info, MembershipPayload, resolve.points_adjust(info.context, data), _membership
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN), description="Set a member's tier, reason required."
    )
    async def member_tier_assign(
        self, info: Info, input: MemberTierAssignInput
    ) -> MembershipPayload:
        return await mutate(
            info, MembershipPayload, resolve.tier_assign(info.context, _fields(input)), _membership
        )

    @strawberry.mutation(extensions=allow(R.CONSUMER), description="积分兑换 (idempotent).")
    async def redeem(self, info: Info, input: RedeemInput) -> RedemptionPayload:
        call = resolve.redeem_reward(info.context, input.reward_id, input.idempotency_key)
        return await mutate(
            info, RedemptionPayload, call, lambda r: {"redemption": Redemption.from_model(r)}
        )


@strawberry.type
class MemberQuery(LoyaltyQuery):
    @strawberry.field(extensions=allow(R.CONSUMER))
    async def my_memberships(self, info: Info) -> list[Membership]:
        return [Membership.from_model(m) for m in await resolve.my_memberships(info.context)]

    @strawberry.field(extensions=allow(R.CONSUMER))
    async def my_member_profile(self, info: Info) -> MemberProfile:
        viewer = info.context.require_viewer()
        user, profile = await resolve.member(info.context, viewer.id)
        return MemberProfile.of(user.phone if user else None, profile)

    @strawberry.field(
        extensions=allow(R.CONSUMER, *STAFF, R.OPERATOR),
        description="The member's own, or one of the viewer's merchant.",
    )
    async def membership(self, info: Info, id: strawberry.ID) -> Membership | None:
        row = await resolve.membership(info.context, id)
        return Membership.from_model(row) if row else None

    @strawberry.field(
        extensions=allow(*STAFF, R.OPERATOR),
        description="A merchant's members, newest first. `search`: a phone number, its last 4"
        " digits, or part of a nickname. Spend filters are on net spend since joining.",
    )
    async def members(
        self,
        info: Info,
        merchant_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
        tier_id: strawberry.ID | None = None,
        min_spend: Fen | None = None,
        max_spend: Fen | None = None,
        last_visit_after: datetime | None = None,
        last_visit_before: datetime | None = None,
    ) -> Connection[Membership]:
        filters = {
            "search": search,
            "tier_id": tier_id,
            "min_spend": min_spend,
            "max_spend": max_spend,
            "last_visit_after": last_visit_after,
            "last_visit_before": last_visit_before,
        }
        page = await resolve.member_list(info.context, merchant_id, first, after, filters)
        return Connection.of(page, Membership.from_model)


@strawberry.type
class MemberSubscription:
    @strawberry.subscription(
        extensions=allow(R.CONSUMER), description="The member's own points, live."
    )
    async def points_changed(
        self, info: Info, membership_id: strawberry.ID
    ) -> AsyncGenerator[PointsEvent, None]:
        async for m in resolve.points_events(info.context, membership_id):
            yield PointsEvent(
                membership_id=strawberry.ID(m["membershipId"]),
                points=int(m["points"]),
                pending_points=int(m["pendingPoints"]),
                points_debt=int(m["pointsDebt"]),
                delta=int(m["delta"]),
                reason=str(m["reason"]),
                transaction_id=strawberry.ID(m["transactionId"])
                if m.get("transactionId")
                else None,
                at=datetime.fromisoformat(m["at"]),
            )
