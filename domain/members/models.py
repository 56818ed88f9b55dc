"""Members (会员), tiers (会员等级), points (积分) and the redemption catalogue.

Point balances live in ledger accounts (asset POINTS), not here: each membership has AVAILABLE,
PENDING and DEBT accounts, each programme (one per merchant) its ISSUED, ADJUSTED, REDEEMED and
EXPIRED accounts. The rows below say where the points came from (accruals, lots) and where
they went (redemptions, activities).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class PointsProgramme(Model):
    """A merchant's membership programme: the return window and how earned points expire."""

    merchant_id = fields.CharField(max_length=40, primary_key=True)
    pending_days = fields.IntField(default=7)  # 退货期: points wait this long before use
    expiry_mode = fields.CharField(max_length=20, default="END_OF_NEXT_YEAR")  # NONE DAYS
    expiry_days = fields.IntField(null=True)
    earn_on_bonus = fields.BooleanField(default=False)  # does spending 赠送金 earn points
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "points_programmes"


class Membership(Model):
    """A consumer's membership of one merchant's programme."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40)
    user_id = fields.CharField(max_length=40, db_index=True)
    source = fields.CharField(max_length=12)  # OPT_IN CARD PAYMENT
    tier_id = fields.CharField(max_length=40, null=True)
    tier_until = fields.DatetimeField(null=True, db_index=True)  # downgrades wait for it
    total_spend = fields.BigIntField(default=0)
    visits = fields.IntField(default=0)
    last_visit_at = fields.DatetimeField(null=True)
    first_purchase_at = fields.DatetimeField(null=True)
    marketing_consent = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "memberships"
        unique_together = (("merchant_id", "user_id"),)
        indexes = (("merchant_id", "id"),)


class MemberProfile(Model):
    """A consumer's own data, shared by their memberships.

    Real-name data is kept encrypted and shown masked.
    """

    user_id = fields.CharField(max_length=40, primary_key=True)
    nickname = fields.CharField(max_length=40, null=True)
    birthday = fields.DateField(null=True)
    real_name_encrypted = fields.TextField(null=True)
    real_name_masked = fields.CharField(max_length=40, null=True)
    id_number_encrypted = fields.TextField(null=True)
    id_number_masked = fields.CharField(max_length=24, null=True)
    personal_data_consent_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "member_profiles"


class Tier(Model):
    """A level of a programme: reached by rolling 12-month spend or points earned."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=40)
    rank = fields.IntField()
    min_spend_12m = fields.BigIntField(null=True)
    min_points_12m = fields.BigIntField(null=True)
    discount_percent = fields.IntField(default=0)
    points_multiplier_percent = fields.IntField(default=100)
    created_at = fields.DatetimeField()

    class Meta:
        table = "tiers"
        unique_together = (("merchant_id", "rank"),)


class TierChange(Model):
    """History of a membership's tier: upgrades, period-end reviews, manual assignments."""

    id = fields.CharField(max_length=40, primary_key=True)
    membership_id = fields.CharField(max_length=40, db_index=True)
    from_tier_id = fields.CharField(max_length=40, null=True)
    to_tier_id = fields.CharField(max_length=40, null=True)
    reason = fields.CharField(max_length=16)  # UPGRADE PERIOD_END MANUAL
    note = fields.CharField(max_length=200, null=True)
    actor_id = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "tier_changes"


class PointsRule(Model):
    """An earning rule as data (see domain/members/rules.py for what each field means)."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=60)
    kind = fields.CharField(max_length=16)  # SPEND SIGNUP FIRST_PURCHASE
    points_per_yuan = fields.IntField(default=0)
    bonus_points = fields.IntField(default=0)
    min_amount = fields.BigIntField(null=True)
    store_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    tier_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    weekdays: fields.JSONField[list[int]] = fields.JSONField(default=list)
    minute_from = fields.IntField(null=True)  # minutes after midnight, Beijing time
    minute_to = fields.IntField(null=True)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    birthday_month_only = fields.BooleanField(default=False)
    daily_cap = fields.IntField(null=True)  # points per member per day from this rule
    apply_tier_multiplier = fields.BooleanField(default=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_rules"


class PointsAccrual(Model):
    """What one payment, refund or sign-up did to a membership's points, exactly once.

    The source id is unique, so a second worker's claim of the same payment finds it taken.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    source_id = fields.CharField(max_length=40, unique=True)
    kind = fields.CharField(max_length=12)  # PAYMENT REFUND SIGNUP
    membership_id = fields.CharField(max_length=40)
    merchant_id = fields.CharField(max_length=40)
    payment_id = fields.CharField(max_length=40, null=True)
    store_id = fields.CharField(max_length=40, null=True)
    amount = fields.BigIntField(default=0)  # spend, signed (refunds negative)
    eligible = fields.BigIntField(default=0)  # the part of it that earns points, signed
    points = fields.BigIntField(default=0)  # earned (+) or taken back (-)
    refunded_eligible = fields.BigIntField(default=0)  # PAYMENT rows: refunds processed so far
    clawed_points = fields.BigIntField(default=0)  # PAYMENT rows: points taken back so far
    debt_repaid = fields.BigIntField(default=0)  # earned points that paid an old debt first
    debt_created = fields.BigIntField(default=0)  # taken-back points the member no longer had
    fired: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    lot_id = fields.CharField(max_length=40, null=True)
    transfer_id = fields.CharField(max_length=40, null=True)
    occurred_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_accruals"
        indexes = (("membership_id", "occurred_at"),)


class PointsLot(Model):
    """Points earned together, with one maturity and one expiry, used oldest first.

    PENDING and AVAILABLE lots hold `remaining` points (the member's PENDING and AVAILABLE
    accounts are their sums). USED and EXPIRED lots hold none.
    """

    id = fields.CharField(max_length=40, primary_key=True)
    membership_id = fields.CharField(max_length=40, db_index=True)
    source = fields.CharField(max_length=12)  # PAYMENT SIGNUP ADJUST
    reference = fields.CharField(max_length=40)
    points = fields.BigIntField()
    remaining = fields.BigIntField()
    expired = fields.BigIntField(default=0)
    status = fields.CharField(max_length=10)  # PENDING AVAILABLE USED EXPIRED
    earned_at = fields.DatetimeField()
    available_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "points_lots"
        indexes = (("status", "available_at"), ("status", "expires_at"))


class PointsActivity(Model):
    """One line of a member's points statement, with the rules that fired for earnings."""

    id = fields.CharField(max_length=40, primary_key=True)
    membership_id = fields.CharField(max_length=40)
    kind = fields.CharField(max_length=12)  # EARN SIGNUP CLAWBACK REDEEM EXPIRE ADJUST MATURE
    points = fields.BigIntField()  # change of available + pending - debt
    available_after = fields.BigIntField()
    pending_after = fields.BigIntField()
    debt_after = fields.BigIntField()
    reference = fields.CharField(max_length=40, null=True)
    transfer_id = fields.CharField(max_length=40, null=True)
    detail: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_activities"
        indexes = (("membership_id", "id"),)


class Reward(Model):
    """A catalogue item priced in points (gift now, coupons later)."""

    id = fields.CharField(max_length=40, primary_key=True)
    merchant_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=60)
    description = fields.CharField(max_length=500, null=True)
    points_cost = fields.BigIntField()
    stock = fields.IntField(null=True)  # None: unlimited
    redeemed_count = fields.IntField(default=0)
    per_member_limit = fields.IntField(null=True)
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "rewards"


class Redemption(Model):
    """积分兑换: points, stock and this row commit together."""

    id = fields.CharField(max_length=40, primary_key=True)
    reward_id = fields.CharField(max_length=40)
    membership_id = fields.CharField(max_length=40)
    merchant_id = fields.CharField(max_length=40)
    points = fields.BigIntField()
    status = fields.CharField(max_length=12)  # COMPLETED
    transfer_id = fields.CharField(max_length=40)
    created_at = fields.DatetimeField()

    class Meta:
        table = "redemptions"
        indexes = (("membership_id", "reward_id"),)


class PointsJobCursor(Model):
    """How far the accrual job has looked: ids below `position` are never scanned again."""

    name = fields.CharField(max_length=20, primary_key=True)
    position = fields.CharField(max_length=40)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "points_job_cursors"
