"""The earning rules engine on its own (pure functions): every condition, the tier multiplier,
caps and rounding. The API tests in test_members.py run the same engine on real payments."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.members.rules import (
    FIRST_PURCHASE,
    SIGNUP,
    Facts,
    Rule,
    day_bounds,
    payment_points,
    signup_points,
    used_by_rule,
)

# Monday 6 January 2025, 10:30 in Beijing (02:30 UTC).
MONDAY = datetime(2025, 1, 6, 2, 30, tzinfo=UTC)


def points(rules: list[Rule], **facts: object) -> dict[str, int]:
    base: dict[str, object] = {"eligible": 10_000, "at": MONDAY}
    fired = payment_points(rules, Facts(**{**base, **facts}))  # type: ignore[arg-type]
    return {f.rule_id: f.points for f in fired}


def test_base_rate_rounds_down_per_fen():
    assert points([Rule("r", "基础", points_per_yuan=3)], eligible=1_299) == {"r": 38}


def test_weekdays_and_time_windows_are_beijing_time():
    sunday_utc_monday_beijing = datetime(2025, 1, 5, 17, 0, tzinfo=UTC)  # Mon 01:00 Beijing
    monday_only = Rule("m", "周一", points_per_yuan=1, weekdays=(1,))
    assert points([monday_only], at=sunday_utc_monday_beijing) == {"m": 100}
    assert points([monday_only], at=datetime(2025, 1, 5, 15, 0, tzinfo=UTC)) == {}
    night = Rule("n", "夜宵", points_per_yuan=1, minute_from=22 * 60, minute_to=2 * 60)
    at_beijing = {
        "23:00": datetime(2025, 1, 6, 15, 0, tzinfo=UTC),
        "01:59": datetime(2025, 1, 6, 17, 59, tzinfo=UTC),
        "02:00": datetime(2025, 1, 6, 18, 0, tzinfo=UTC),
        "12:00": datetime(2025, 1, 6, 4, 0, tzinfo=UTC),
    }
    fired = {label: points([night], at=at) for label, at in at_beijing.items()}
    assert fired == {"23:00": {"n": 100}, "01:59": {"n": 100}, "02:00": {}, "12:00": {}}
    lunch = Rule("l", "午市", points_per_yuan=1, minute_from=11 * 60, minute_to=14 * 60)
    assert points([lunch], at=at_beijing["12:00"]) == {"l": 100}
    assert points([lunch], at=at_beijing["23:00"]) == {}


def test_date_range_stores_minimum_and_active():
    rule = Rule(
        "p",
        "活动",
        points_per_yuan=2,
        starts_at=datetime(2025, 1, 1, tzinfo=UTC),
        ends_at=datetime(2025, 2, 1, tzinfo=UTC),
        store_ids=("sto_a",),
        min_amount=5_000,
    )
    assert points([rule], store_id="sto_a") == {"p": 200}
    assert points([rule], store_id="sto_b") == {}
    assert points([rule], store_id="sto_a", eligible=4_999) == {}
    assert points([rule], store_id="sto_a", at=datetime(2025, 2, 1, tzinfo=UTC)) == {}
    assert points([rule], store_id="sto_a", at=datetime(2024, 12, 31, tzinfo=UTC)) == {}
    off = Rule("o", "停用", points_per_yuan=1, active=False)
    assert points([off]) == {}


def test_tier_multiplier_and_tier_only_rules():
    base = Rule("b", "基础", points_per_yuan=1)
    flat = Rule("f", "不乘倍", points_per_yuan=1, apply_tier_multiplier=False)
    gold_only = Rule("g", "金卡专享", bonus_points=50, tier_ids=("tir_gold",))
    gold = {"tier_id": "tir_gold", "tier_name": "金卡", "tier_multiplier_percent": 150}
    assert points([base, flat, gold_only], **gold) == {"b": 150, "f": 100, "g": 50}
    assert points([base, flat, gold_only]) == {"b": 100, "f": 100}


def test_daily_cap_counts_what_the_member_earned_today():
    capped = Rule("c", "封顶", points_per_yuan=1, daily_cap=150)
    assert points([capped], used_today={"c": 120}) == {"c": 30}
    assert points([capped], used_today={"c": 150}) == {"c": 0}
    fired = payment_points([capped], Facts(eligible=10_000, at=MONDAY, used_today={"c": 120}))
    assert fired[0].capped and "上限" in fired[0].why
    assert used_by_rule([[{"ruleId": "c", "points": 30}], [{"ruleId": "c", "points": 5}]]) == {
        "c": 35
    }


def test_birthday_month_first_purchase_and_signup():
    birthday = Rule("b", "生日月", points_per_yuan=1, birthday_month_only=True)
    assert points([birthday], birthday=date(1990, 1, 20)) == {"b": 100}
    assert points([birthday], birthday=date(1990, 2, 20)) == {}
    assert points([birthday]) == {}
    first = Rule("f", "首单", kind=FIRST_PURCHASE, bonus_points=30)
    assert points([first], first_purchase=True) == {"f": 30}
    assert points([first]) == {}
    signup = Rule("s", "注册", kind=SIGNUP, bonus_points=20)
    assert points([signup]) == {}  # never on a payment
    assert [(f.rule_id, f.points) for f in signup_points([signup, first], MONDAY)] == [("s", 20)]


def test_beijing_day_bounds():
    start, end = day_bounds(datetime(2025, 1, 5, 17, 0, tzinfo=UTC))  # Mon 01:00 Beijing
    assert (start, end) == (
        datetime(2025, 1, 5, 16, 0, tzinfo=UTC),
        datetime(2025, 1, 6, 16, 0, tzinfo=UTC),
    )
