"""The earning rules engine: pure functions from rules (data) and the facts of a payment to the
points each rule gives, with the reason, so a member can see why they earned what they did.

Every matching rule fires and the points add up:

- SPEND: `eligible fen * pointsPerYuan / 100`, times the member's tier multiplier unless the rule
  says not to, plus `bonusPoints` per qualifying payment.
- FIRST_PURCHASE: the same, on the member's first payment only.
- SIGNUP: `bonusPoints` when a consumer becomes a member (no payment conditions).

Conditions (all must hold, an empty one always holds): active, `startsAt <= time < endsAt`,
weekdays (ISO 1 = Monday) and a time-of-day window (minutes after midnight, may wrap past
midnight) in Beijing time, stores, minimum eligible amount, member tiers, birthday month. A
`dailyCap` limits what one member earns from the rule per Beijing day. Fractions round down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.clock import BEIJING_TIME

SPEND = "SPEND"
FIRST_PURCHASE = "FIRST_PURCHASE"
SIGNUP = "SIGNUP"
KINDS = (SPEND, FIRST_PURCHASE, SIGNUP)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    kind: str = SPEND
    points_per_yuan: int = 0
    bonus_points: int = 0
    min_amount: int | None = None
    store_ids: tuple[str, ...] = ()
    tier_ids: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = ()
    minute_from: int | None = None
    minute_to: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    birthday_month_only: bool = False
    daily_cap: int | None = None
    apply_tier_multiplier: bool = True
    active: bool = True


@dataclass(frozen=True)
class Facts:
    """What the engine knows about one payment and its member."""

    eligible: int  # fen that earn points
    at: datetime
    store_id: str | None = None
    tier_id: str | None = None
    tier_name: str | None = None
    tier_multiplier_percent: int = 100
    birthday: date | None = None
    first_purchase: bool = False
    used_today: Mapping[str, int] = field(default_factory=dict)  # rule id -> points today


@dataclass(frozen=True)
class Fired:
    rule_id: str
    name: str
    kind: str
    points: int
    why: str
    capped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "name": self.name,
            "kind": self.kind,
            "points": self.points,
            "why": self.why,
            "capped": self.capped,
        }


def beijing(at: datetime) -> datetime:
    return at.astimezone(UTC) + BEIJING_TIME


def day_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The Beijing day `at` falls in, as a UTC [start, end)."""
    local = beijing(at)
    start_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    start = start_local - BEIJING_TIME
    return start, start + timedelta(days=1)


def in_time_window(minute: int, start: int | None, end: int | None) -> bool:
    if start is None or end is None:
        return True
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight (22:00-02:00)


def _conditions_hold(rule: Rule, facts: Facts) -> bool:
    if not rule.active:
        return False
    if rule.starts_at is not None and facts.at < rule.starts_at:
        return False
    if rule.ends_at is not None and facts.at >= rule.ends_at:
        return False
    if rule.kind == SIGNUP:
        return True
    local = beijing(facts.at)
    if rule.weekdays and local.isoweekday() not in rule.weekdays:
        return False
    if not in_time_window(local.hour * 60 + local.minute, rule.minute_from, rule.minute_to):
        return False
    if rule.store_ids and facts.store_id not in rule.store_ids:
        return False
    if rule.min_amount is not None and facts.eligible < rule.min_amount:
        return False
    if rule.tier_ids and facts.tier_id not in rule.tier_ids:
        return False
    if rule.birthday_month_only and (facts.birthday is None or facts.birthday.month != local.month):
        return False
    return not (rule.kind == FIRST_PURCHASE and not facts.first_purchase)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _points_of(rule: Rule, facts: Facts) -> tuple[int, str]:
    parts = []
    points = 0
    if rule.points_per_yuan and rule.kind != SIGNUP:
        base = facts.eligible * rule.points_per_yuan // 100
        parts.append(f"{_yuan(facts.eligible)} 元 × 每元 {rule.points_per_yuan} 分")
        if rule.apply_tier_multiplier and facts.tier_multiplier_percent != 100:
            base = base * facts.tier_multiplier_percent // 100
            parts.append(f"× {facts.tier_multiplier_percent}%（{facts.tier_name or '等级'}）")
        points += base
    if rule.bonus_points:
        points += rule.bonus_points
        parts.append(f"奖励 {rule.bonus_points} 分")
    return points, " ".join(parts) or "0"


def evaluate(rules: Sequence[Rule], facts: Facts, kinds: tuple[str, ...]) -> list[Fired]:
    """The rules of `kinds` that fire for these facts, in rule order, with their points."""
    fired = []
    for rule in rules:
        if rule.kind not in kinds or not _conditions_hold(rule, facts):
            continue
        points, why = _points_of(rule, facts)
        capped = False
        if rule.daily_cap is not None:
            room = max(0, rule.daily_cap - facts.used_today.get(rule.id, 0))
            if points > room:
                points, capped = room, True
                why += f"（每日上限 {rule.daily_cap} 分）"
        fired.append(Fired(rule.id, rule.name, rule.kind, points, why, capped))
    return fired


def payment_points(rules: Sequence[Rule], facts: Facts) -> list[Fired]:
    return evaluate(rules, facts, (SPEND, FIRST_PURCHASE))


def signup_points(rules: Sequence[Rule], at: datetime) -> list[Fired]:
    return evaluate(rules, Facts(eligible=0, at=at), (SIGNUP,))


def used_by_rule(fired_lists: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """Points per rule id over stored `fired` lists (today's accruals of one member)."""
    used: dict[str, int] = {}
    for fired in fired_lists:
        for item in fired:
            rule_id = str(item.get("ruleId", ""))
            used[rule_id] = used.get(rule_id, 0) + int(item.get("points", 0))
    return used
