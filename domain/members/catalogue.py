"""What a merchant sets up (merchant admins only): programme settings, tiers, earning rules
and the redemption catalogue. The first of these starts the merchant's programme."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import clock
from domain.actor import Actor
from domain.audit import service as audit
from domain.db import transaction
from domain.errors import forbidden, invalid_input
from domain.ids import has_prefix, new_id
from domain.members import enrol, errors
from domain.members import rules as engine
from domain.members.models import PointsProgramme, PointsRule, Reward, Tier
from domain.merchants.models import Store
from domain.merchants.service import get_merchant

EXPIRY_MODES = ("NONE", "DAYS", "END_OF_NEXT_YEAR")
MAX_POINTS = 10**9


async def _admin(actor: Actor, merchant_id: str) -> None:
    await get_merchant(merchant_id)
    if not actor.is_admin_of(merchant_id):
        raise forbidden("Not your merchant")


def _name(value: str, limit: int, field: str = "name") -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise invalid_input(
            field, f"名称须为 1-{limit} 个字符", f"Name must be 1-{limit} characters"
        )
    return value


def _within(value: int | None, low: int, high: int, field: str) -> int | None:
    if value is not None and not low <= value <= high:
        raise invalid_input(field, f"须在 {low}-{high} 之间", f"{field} must be {low}-{high}")
    return value


def _window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise invalid_input("endsAt", "结束时间须晚于开始时间", "endsAt must be after startsAt")


# --- programme --------------------------------------------------------------------------------


async def get_programme(merchant_id: str) -> PointsProgramme | None:
    return await PointsProgramme.get_or_none(merchant_id=merchant_id)


async def update_programme(
    actor: Actor,
    merchant_id: str,
    *,
    pending_days: int | None = None,
    expiry_mode: str | None = None,
    expiry_days: int | None = None,
    earn_on_bonus: bool | None = None,
) -> PointsProgramme:
    await _admin(actor, merchant_id)
    _within(pending_days, 0, 365, "pendingDays")
    _within(expiry_days, 1, 3650, "expiryDays")
    if expiry_mode is not None and expiry_mode not in EXPIRY_MODES:
        raise invalid_input("expiryMode", "过期方式无效", "Unknown expiryMode")
    async with transaction() as conn:
        programme = await enrol.ensure_programme(conn, merchant_id)
        changes: dict[str, Any] = {}
        if pending_days is not None:
            changes["pending_days"] = pending_days
        if expiry_mode is not None:
            changes["expiry_mode"] = expiry_mode
        if expiry_days is not None:
            changes["expiry_days"] = expiry_days
        if earn_on_bonus is not None:
            changes["earn_on_bonus"] = earn_on_bonus
        mode = changes.get("expiry_mode", programme.expiry_mode)
        if mode == "DAYS" and not changes.get("expiry_days", programme.expiry_days):
            raise invalid_input(
                "expiryDays", "按天过期须设置天数", "expiryMode DAYS needs expiryDays"
            )
        changes["updated_at"] = clock.now()
        await PointsProgramme.filter(merchant_id=merchant_id).using_db(conn).update(**changes)
        await audit.record(conn, actor, "loyaltyProgrammeUpdate", merchant_id, _plain(changes))
        return await PointsProgramme.filter(merchant_id=merchant_id).using_db(conn).get()


def _plain(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in changes.items()}


# --- tiers ------------------------------------------------------------------------------------


def _tier_values(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data.get("name") is not None:
        out["name"] = _name(data["name"], 40)
    if data.get("rank") is not None:
        out["rank"] = _within(data["rank"], 0, 1000, "rank")
    if data.get("min_spend_12m") is not None:
        out["min_spend_12m"] = _within(data["min_spend_12m"], 0, 10**12, "minSpend12m")
    if data.get("min_points") is not None:
        out["min_points_12m"] = _within(data["min_points"], 0, MAX_POINTS, "minPoints")
    if data.get("discount_percent") is not None:
        out["discount_percent"] = _within(data["discount_percent"], 0, 90, "discountPercent")
    if data.get("points_multiplier_percent") is not None:
        out["points_multiplier_percent"] = _within(
            data["points_multiplier_percent"], 0, 1000, "pointsMultiplierPercent"
        )
    return out


async def create_tier(actor: Actor, merchant_id: str, **data: Any) -> Tier:
    await _admin(actor, merchant_id)
    values = _tier_values(data)
    try:
        async with transaction() as conn:
            await enrol.ensure_programme(conn, merchant_id)
            tier = await Tier.create(
                using_db=conn,
                id=new_id("tir"),
                merchant_id=merchant_id,
                created_at=clock.now(),
                **values,
            )
            await audit.record(conn, actor, "tierCreate", tier.id, {"rank": tier.rank})
    except IntegrityError as exc:
        raise errors.rank_taken() from exc
    return tier


async def _own(actor: Actor, model: Any, object_id: str, prefix: str, missing: Any) -> Any:
    row = await model.get_or_none(id=object_id) if has_prefix(object_id, prefix) else None
    if row is None:
        raise missing()
    if not actor.is_admin_of(row.merchant_id):
        raise missing()  # another merchant's: as if it did not exist
    return row


async def update_tier(actor: Actor, tier_id: str, **data: Any) -> Tier:
    tier: Tier = await _own(actor, Tier, tier_id, "tir", errors.tier_not_found)
    values = _tier_values(data)
    try:
        async with transaction() as conn:
            if values:
                await Tier.filter(id=tier.id).using_db(conn).update(**values)
            await audit.record(conn, actor, "tierUpdate", tier.id, values)
    except IntegrityError as exc:
        raise errors.rank_taken() from exc
    return await Tier.get(id=tier.id)


# --- earning rules ----------------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minutes(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    match = _HHMM.match(value)
    if match is None:
        raise invalid_input(field, "时间格式须为 HH:MM", f"{field} must be HH:MM")
    return int(match[1]) * 60 + int(match[2])


async def _rule_values(merchant_id: str, data: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, low, high, field in (
        ("points_per_yuan", 0, 1000, "pointsPerYuan"),
        ("bonus_points", 0, MAX_POINTS, "bonusPoints"),
        ("min_amount", 0, 10**12, "minAmount"),
        ("daily_cap", 0, MAX_POINTS, "dailyCap"),
    ):
        if data.get(key) is not None:
            out[key] = _within(data[key], low, high, field)
    if data.get("name") is not None:
        out["name"] = _name(data["name"], 60)
    for key in ("starts_at", "ends_at", "birthday_month_only", "apply_tier_multiplier", "active"):
        if data.get(key) is not None:
            out[key] = data[key]
    if creating:
        kind = data.get("kind") or engine.SPEND
        if kind not in engine.KINDS:
            raise invalid_input("kind", "规则类型无效", "Unknown rule kind")
        out["kind"] = kind
        if data.get("weekdays"):
            days = sorted(set(data["weekdays"]))
            if any(not 1 <= d <= 7 for d in days):
                raise invalid_input("weekdays", "星期须为 1-7", "weekdays are 1 (Mon) to 7 (Sun)")
            out["weekdays"] = days
        start = _minutes(data.get("time_from"), "timeFrom")
        end = _minutes(data.get("time_to"), "timeTo")
        if (start is None) != (end is None) or (start is not None and start == end):
            raise invalid_input(
                "timeTo", "须同时设置不同的开始和结束时间", "Give both timeFrom and timeTo"
            )
        out["minute_from"], out["minute_to"] = start, end
        store_ids = list(dict.fromkeys(data.get("store_ids") or []))
        if store_ids and await Store.filter(
            id__in=store_ids, merchant_id=merchant_id
        ).count() != len(store_ids):
            raise invalid_input("storeIds", "门店不属于该商户", "A store is not this merchant's")
        out["store_ids"] = store_ids
        tier_ids = list(dict.fromkeys(data.get("tier_ids") or []))
        if tier_ids and await Tier.filter(id__in=tier_ids, merchant_id=merchant_id).count() != len(
            tier_ids
        ):
            raise invalid_input("tierIds", "等级不属于该商户", "A tier is not this merchant's")
        out["tier_ids"] = tier_ids
    return out


def _check_rule(rule: dict[str, Any]) -> None:
    ppy, bonus = rule.get("points_per_yuan", 0), rule.get("bonus_points", 0)
    if rule["kind"] == engine.SIGNUP and (ppy or not bonus):
        raise invalid_input(
            "bonusPoints",
            "注册奖励须设置奖励积分，且不按金额计",
            "A SIGNUP rule gives bonusPoints only",
        )
    if not ppy and not bonus:
        raise invalid_input(
            "pointsPerYuan", "规则须给出积分", "A rule needs pointsPerYuan or bonusPoints"
        )
    _window(rule.get("starts_at"), rule.get("ends_at"))


async def create_rule(actor: Actor, merchant_id: str, **data: Any) -> PointsRule:
    await _admin(actor, merchant_id)
    values = await _rule_values(merchant_id, data, creating=True)
    _check_rule(values)
    async with transaction() as conn:
        await enrol.ensure_programme(conn, merchant_id)
        rule = await PointsRule.create(
            using_db=conn,
            id=new_id("prl"),
            merchant_id=merchant_id,
            created_at=clock.now(),
            **values,
        )
        await audit.record(conn, actor, "pointsRuleCreate", rule.id, {"kind": rule.kind})
    return rule


async def update_rule(actor: Actor, rule_id: str, **data: Any) -> PointsRule:
    """Cheap edits: name, rates, cap, end date, on/off (conditions: create a new rule)."""
    rule: PointsRule = await _own(actor, PointsRule, rule_id, "prl", errors.rule_not_found)
    values = await _rule_values(rule.merchant_id, data, creating=False)
    merged = {
        "kind": rule.kind,
        "points_per_yuan": rule.points_per_yuan,
        "bonus_points": rule.bonus_points,
        "starts_at": rule.starts_at,
        "ends_at": rule.ends_at,
        **values,
    }
    _check_rule(merged)
    async with transaction() as conn:
        if values:
            await PointsRule.filter(id=rule.id).using_db(conn).update(**values)
        await audit.record(conn, actor, "pointsRuleUpdate", rule.id, _plain(values))
    return await PointsRule.get(id=rule.id)


# --- rewards ----------------------------------------------------------------------------------


def _reward_values(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data.get("name") is not None:
        out["name"] = _name(data["name"], 60)
    if data.get("description") is not None:
        if len(data["description"]) > 500:
            raise invalid_input("description", "描述最多 500 字", "At most 500 characters")
        out["description"] = data["description"]
    if data.get("points_cost") is not None:
        out["points_cost"] = _within(data["points_cost"], 1, MAX_POINTS, "pointsCost")
    if data.get("per_member_limit") is not None:
        out["per_member_limit"] = _within(data["per_member_limit"], 1, 10**6, "perMemberLimit")
    for key in ("valid_from", "valid_until", "active"):
        if data.get(key) is not None:
            out[key] = data[key]
    return out


async def create_reward(
    actor: Actor, merchant_id: str, *, stock: int | None = None, **data: Any
) -> Reward:
    await _admin(actor, merchant_id)
    values = _reward_values(data)
    _within(stock, 0, 10**9, "stock")
    _window(values.get("valid_from"), values.get("valid_until"))
    async with transaction() as conn:
        await enrol.ensure_programme(conn, merchant_id)
        reward = await Reward.create(
            using_db=conn,
            id=new_id("rwd"),
            merchant_id=merchant_id,
            stock=stock,
            created_at=clock.now(),
            **values,
        )
        await audit.record(conn, actor, "rewardCreate", reward.id, {"stock": stock})
    return reward


async def update_reward(
    actor: Actor, reward_id: str, *, add_stock: int | None = None, **data: Any
) -> Reward:
    """Edit a reward; `add_stock` restocks by a delta (never a blind overwrite of a count that
    redemptions are taking from)."""
    reward: Reward = await _own(actor, Reward, reward_id, "rwd", errors.reward_not_found)
    values = _reward_values(data)
    _within(add_stock, 1, 10**9, "addStock")
    _window(
        values.get("valid_from", reward.valid_from), values.get("valid_until", reward.valid_until)
    )
    async with transaction() as conn:
        if values:
            await Reward.filter(id=reward.id).using_db(conn).update(**values)
        if add_stock:
            if reward.stock is None:
                raise invalid_input("addStock", "该商品不限库存", "This reward has no stock limit")
            await Reward.filter(id=reward.id).using_db(conn).update(stock=F("stock") + add_stock)
        await audit.record(
            conn, actor, "rewardUpdate", reward.id, {**_plain(values), "addStock": add_stock}
        )
    return await Reward.get(id=reward.id)


async def rewards_of(merchant_id: str, *, everything: bool) -> list[Reward]:
    """The catalogue: what can be redeemed now, or (for the merchant) every item."""
    query = Reward.filter(merchant_id=merchant_id)
    if not everything:
        now = clock.now()
        query = query.filter(active=True)
        rows = await query.order_by("points_cost", "id").limit(500)
        return [
            r
            for r in rows
            if (r.valid_from is None or r.valid_from <= now)
            and (r.valid_until is None or r.valid_until > now)
        ]
    return await query.order_by("points_cost", "id").limit(500)
