"""Members and points through the API: joining, earning rules, the accrual job, refunds and debt,
tiers, expiry, manual adjustment, the member list, the profile and `ledger verify`."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain import clock
from tests.helpers import (
    PAY,
    REFUND,
    MerchantSetup,
    consumer_token,
    gql,
    key,
    make_card,
    make_merchant,
    pay,
)

PROGRAMME_UPDATE = """mutation($i: LoyaltyProgrammeUpdateInput!) { loyaltyProgrammeUpdate(input: $i) {
  loyaltyProgramme { merchantId pendingDays expiryMode expiryDays } errors { code field message } } }"""
RULE_CREATE = """mutation($i: PointsRuleCreateInput!) { pointsRuleCreate(input: $i) {
  pointsRule { id name kind pointsPerYuan weekdays timeFrom timeTo active } errors { code field message } } }"""
RULE_UPDATE = """mutation($i: PointsRuleUpdateInput!) { pointsRuleUpdate(input: $i) {
  pointsRule { id active pointsPerYuan } errors { code field message } } }"""
TIER_CREATE = """mutation($i: TierCreateInput!) { tierCreate(input: $i) {
  tier { id name rank minSpend12m minPoints discountPercent pointsMultiplierPercent } errors { code field message } } }"""
REWARD_CREATE = """mutation($i: RewardCreateInput!) { rewardCreate(input: $i) {
  reward { id name pointsCost stock perMemberLimit } errors { code field message } } }"""
REWARD_UPDATE = """mutation($i: RewardUpdateInput!) { rewardUpdate(input: $i) {
  reward { id stock active } errors { code field message } } }"""
JOIN = """mutation($i: MembershipJoinInput!) { membershipJoin(input: $i) {
  membership { id points pendingPoints source tier { name } } errors { code field message } } }"""
ADJUST = """mutation($i: PointsAdjustInput!) { pointsAdjust(input: $i) {
  membership { id points pendingPoints pointsDebt } errors { code field message } } }"""
REDEEM = """mutation($i: RedeemInput!) { redeem(input: $i) {
  redemption { id points status reward { id name stock } } errors { code field message } } }"""
TIER_ASSIGN = """mutation($i: MemberTierAssignInput!) { memberTierAssign(input: $i) {
  membership { id tier { name } tierHistory { reason note toTierId } } errors { code field message } } }"""
MY_MEMBERSHIPS = """{ myMemberships { id merchantId source points pendingPoints pointsDebt totalSpend visits
  merchant { id name } tier { id name rank }
  tierProgress { spend12m points12m nextTier { name } spendToNext pointsToNext }
  tierHistory { reason fromTierId toTierId note }
  redemptions { id points reward { name } }
  pointsHistory(first: 50) { edges { node { type points availableAfter pendingAfter debtAfter reference
    reason rules { ruleId name kind points why capped } } } } } }"""
MEMBERS = """query($m: ID!, $search: String, $tier: ID, $minSpend: Fen, $maxSpend: Fen, $after: DateTime) {
  members(merchantId: $m, first: 50, search: $search, tierId: $tier, minSpend: $minSpend,
          maxSpend: $maxSpend, lastVisitAfter: $after) {
    edges { node { id totalSpend visits lastVisitAt member { nickname maskedPhone idNumberMasked realNameMasked } } }
    pageInfo { hasNextPage } } }"""


async def accrue() -> int:
    from domain.members.accrual import accrue_points

    return await accrue_points()


async def mature_and_expire() -> None:
    from domain.members import expiry

    await expiry.mature_due()
    await expiry.expire_due()


async def ledger_ok() -> None:
    """`yikatong ledger verify`: the ledger, payments and points invariants."""
    from domain.ledger.verify import verify
    from domain.members.verify import verify as verify_points
    from domain.payments.verify import verify as verify_payments

    report = await verify()
    await verify_payments(report)
    await verify_points(report)
    assert report.ok, report.problems


async def ok(client: httpx.AsyncClient, doc: str, field: str, i: dict[str, Any], token: str) -> Any:
    body = await gql(client, doc, {"i": i}, token=token)
    assert "errors" not in body, body
    payload = body["data"][field]
    assert payload["errors"] == [], payload
    return payload


async def programme(
    client: httpx.AsyncClient,
    m: MerchantSetup,
    *,
    pending_days: int = 0,
    points_per_yuan: int | None = 1,
    **settings: Any,
) -> None:
    """Start the merchant's programme: a return window and (by default) 1 point per yuan."""
    await ok(
        client,
        PROGRAMME_UPDATE,
        "loyaltyProgrammeUpdate",
        {"merchantId": m.merchant_id, "pendingDays": pending_days, **settings},
        m.admin,
    )
    if points_per_yuan:
        await rule(client, m, name="基础积分", pointsPerYuan=points_per_yuan)


async def rule(client: httpx.AsyncClient, m: MerchantSetup, **fields: Any) -> str:
    payload = await ok(
        client,
        RULE_CREATE,
        "pointsRuleCreate",
        {"merchantId": m.merchant_id, "pointsPerYuan": 0, "name": "rule", **fields},
        m.admin,
    )
    return str(payload["pointsRule"]["id"])


async def reward(client: httpx.AsyncClient, m: MerchantSetup, cost: int, **fields: Any) -> str:
    payload = await ok(
        client,
        REWARD_CREATE,
        "rewardCreate",
        {"merchantId": m.merchant_id, "name": "咖啡一杯", "pointsCost": cost, **fields},
        m.admin,
    )
    return str(payload["reward"]["id"])


async def new_consumer(app: Any, sms: Any, phone: str | None = None) -> str:
    """A consumer login from an address of its own (OTP checks are limited per address)."""
    ip = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    transport = httpx.ASGITransport(app=app, client=(ip, 42000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await consumer_token(c, sms, phone)


async def consumer_with_card(
    app: Any, client: httpx.AsyncClient, sms: Any, m: MerchantSetup, load: int = 400_000
) -> tuple[str, dict[str, Any]]:
    phone = "138" + f"{secrets.randbelow(10**8):08d}"
    token = await new_consumer(app, sms, phone)
    card = await make_card(client, m, load=load, holder_phone=phone)
    return token, card


async def memberships(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    body = await gql(client, MY_MEMBERSHIPS, token=token)
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["myMemberships"]
    return found


async def membership_at(client: httpx.AsyncClient, token: str, m: MerchantSetup) -> dict[str, Any]:
    mine = [x for x in await memberships(client, token) if x["merchantId"] == m.merchant_id]
    assert len(mine) == 1, mine
    return mine[0]


def history(membership: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in membership["pointsHistory"]["edges"]]


async def refund(client: httpx.AsyncClient, m: MerchantSetup, payment_id: str, amount: int) -> None:
    body = await gql(
        client,
        REFUND,
        {"i": {"paymentId": payment_id, "amount": amount, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["refund"]["errors"] == [], body


# --- joining and earning -----------------------------------------------------------------------


async def test_paying_makes_a_member_and_earns_under_the_rules_that_fired(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m, pending_days=7)
    now_local = datetime.now(UTC) + clock.BEIJING_TIME
    today = now_local.isoweekday()
    await rule(client, m, name="今日双倍", pointsPerYuan=1, weekdays=[today])
    await rule(client, m, name="明日双倍", pointsPerYuan=1, weekdays=[today % 7 + 1])
    await rule(client, m, name="分店加赠", bonusPoints=50, storeIds=[m.other_store_id])
    await rule(client, m, name="满 500 元加赠", bonusPoints=100, minAmount=50_000)
    await rule(client, m, name="首单奖励", kind="FIRST_PURCHASE", bonusPoints=30)
    await rule(client, m, name="注册有礼", kind="SIGNUP", bonusPoints=20)
    token, card = await consumer_with_card(app, client, sms, m)
    assert (await pay(client, m, card["id"], 12_850))["errors"] == []  # 128.50 yuan
    await accrue()
    me = await membership_at(client, token, m)
    assert me["source"] in ("PAYMENT", "CARD")  # the job enrols card holders too
    # 128 (base) + 128 (today's double) + 30 (first purchase) pending; 20 (sign-up) usable.
    assert (me["points"], me["pendingPoints"]) == (20, 286)
    lines = history(me)
    assert [line["type"] for line in lines] == ["EARN", "SIGNUP"]
    fired = {r["name"]: r["points"] for r in lines[0]["rules"]}
    assert fired == {"基础积分": 128, "今日双倍": 128, "首单奖励": 30}
    assert all(r["why"] for r in lines[0]["rules"])
    assert me["totalSpend"] == 12_850 and me["visits"] == 1

    # A second payment is not a first purchase; the return window then ends.
    assert (await pay(client, m, card["id"], 100))["errors"] == []
    await accrue()
    clock.advance(timedelta(days=8))  # (tokens do not live that long: read afterwards)
    try:
        await mature_and_expire()
    finally:
        clock.reset()
    me = await membership_at(client, token, m)
    assert (me["points"], me["pendingPoints"]) == (20 + 286 + 2, 0)
    assert history(me)[0]["type"] == "MATURE"
    await ledger_ok()


async def test_join_by_opt_in_or_by_holding_a_named_card(app, client, sms):
    m = await make_merchant(client)
    phone = "139" + f"{secrets.randbelow(10**8):08d}"
    token = await new_consumer(app, sms, phone)
    body = await gql(client, JOIN, {"i": {"merchantId": m.merchant_id}}, token=token)
    assert body["data"]["membershipJoin"]["errors"][0]["code"] == "NOT_FOUND"  # no programme
    await programme(client, m)
    await rule(client, m, name="注册有礼", kind="SIGNUP", bonusPoints=20)
    joined = await ok(client, JOIN, "membershipJoin", {"merchantId": m.merchant_id}, token)
    again = await ok(client, JOIN, "membershipJoin", {"merchantId": m.merchant_id}, token)
    assert joined["membership"]["id"] == again["membership"]["id"]
    assert again["membership"]["points"] == 20  # the sign-up bonus once
    assert joined["membership"]["source"] == "OPT_IN"

    # Buying a named card makes its holder a member (job, or at once when they look).
    holder_phone = "139" + f"{secrets.randbelow(10**8):08d}"
    holder = await new_consumer(app, sms, holder_phone)
    await make_card(client, m, load=1000, holder_phone=holder_phone)
    me = await membership_at(client, holder, m)
    assert me["source"] == "CARD" and me["points"] == 20
    await accrue()
    assert len(await memberships(client, holder)) == 1
    await ledger_ok()


async def test_daily_cap_birthday_month_and_tier_multiplier(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m, points_per_yuan=None)
    gold = (
        await ok(
            client,
            TIER_CREATE,
            "tierCreate",
            {
                "merchantId": m.merchant_id,
                "name": "金卡",
                "rank": 2,
                "minSpend12m": 10**9,
                "pointsMultiplierPercent": 150,
            },
            m.admin,
        )
    )["tier"]
    await rule(client, m, name="每日封顶", pointsPerYuan=1, dailyCap=150)
    month = (datetime.now(UTC) + clock.BEIJING_TIME).month
    await rule(client, m, name="生日月", pointsPerYuan=1, birthdayMonthOnly=True)
    token, card = await consumer_with_card(app, client, sms, m)
    profile = await gql(
        client,
        """mutation($i: MemberProfileUpdateInput!) { memberProfileUpdate(input: $i) {
             memberProfile { birthday } errors { code } } }""",
        {"i": {"birthday": f"1990-{month:02d}-15"}},
        token=token,
    )
    assert profile["data"]["memberProfileUpdate"]["errors"] == [], profile
    await pay(client, m, card["id"], 10_000)
    await accrue()
    me = await membership_at(client, token, m)
    await ok(
        client,
        TIER_ASSIGN,
        "memberTierAssign",
        {"membershipId": me["id"], "tierId": gold["id"], "reason": "VIP 客户"},
        m.admin,
    )
    await pay(client, m, card["id"], 10_000)
    await accrue()
    me = await membership_at(client, token, m)
    lines = history(me)
    first = {r["name"]: (r["points"], r["capped"]) for r in lines[-1]["rules"]}
    second = {r["name"]: (r["points"], r["capped"]) for r in lines[0]["rules"]}
    assert first == {"每日封顶": (100, False), "生日月": (100, False)}
    # Gold: 100 x 150% = 150, but only 50 of the day's cap is left.
    assert second == {"每日封顶": (50, True), "生日月": (150, False)}
    assert me["points"] == 400
    assert me["tier"]["name"] == "金卡"
    assert me["tierHistory"][0] == {
        "reason": "MANUAL",
        "fromTierId": None,
        "toTierId": gold["id"],
        "note": "VIP 客户",
    }
    await ledger_ok()


async def test_accrual_run_concurrently_twice_accrues_once(app, client, sms):
    from domain.members.models import PointsAccrual

    m = await make_merchant(client)
    await programme(client, m)
    token, card = await consumer_with_card(app, client, sms, m)
    payments = [(await pay(client, m, card["id"], 1000 + i))["payment"]["id"] for i in range(12)]
    await refund(client, m, payments[0], 500)
    await asyncio.gather(accrue(), accrue(), accrue())
    assert await PointsAccrual.filter(source_id__in=payments, kind="PAYMENT").count() == 12
    me = await membership_at(client, token, m)
    earned = sum((1000 + i) // 100 for i in range(12)) - 5  # the refund took back half of 10
    assert me["points"] == earned
    assert [line["type"] for line in history(me)].count("EARN") == 12
    await asyncio.gather(accrue(), accrue())
    assert (await membership_at(client, token, m))["points"] == earned
    await ledger_ok()


# --- refunds and debt ----------------------------------------------------------------------------


async def test_refund_takes_points_back_and_spent_points_become_debt(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m)
    cheap = await reward(client, m, 100)
    token, card = await consumer_with_card(app, client, sms, m)
    paid = (await pay(client, m, card["id"], 15_000))["payment"]  # 150 points
    await accrue()
    spent = await ok(client, REDEEM, "redeem", {"rewardId": cheap, "idempotencyKey": key()}, token)
    assert spent["redemption"]["points"] == 100

    await refund(client, m, paid["id"], 5_000)  # a third back: 50 points
    await accrue()
    me = await membership_at(client, token, m)
    assert (me["points"], me["pointsDebt"]) == (0, 0)
    await refund(client, m, paid["id"], 10_000)  # the rest: 100 more, of which 0 are left
    await accrue()
    me = await membership_at(client, token, m)
    assert (me["points"], me["pendingPoints"], me["pointsDebt"]) == (0, 0, 100)
    assert history(me)[0]["type"] == "CLAWBACK" and history(me)[0]["debtAfter"] == 100

    # The debt is paid first from what comes next, and nothing more can be spent meanwhile.
    body = await gql(
        client, REDEEM, {"i": {"rewardId": cheap, "idempotencyKey": key()}}, token=token
    )
    assert body["data"]["redeem"]["errors"][0]["code"] == "INSUFFICIENT_POINTS"
    await pay(client, m, card["id"], 12_000)  # 120 points: 100 pay the debt
    await accrue()
    me = await membership_at(client, token, m)
    assert (me["points"], me["pointsDebt"]) == (20, 0)
    await ledger_ok()


async def test_manual_adjustment_needs_a_reason_is_audited_and_idempotent(app, client, sms):
    from domain.audit.models import AuditRecord

    m = await make_merchant(client)
    await programme(client, m)
    token, card = await consumer_with_card(app, client, sms, m)
    await pay(client, m, card["id"], 1000)
    await accrue()
    me = await membership_at(client, token, m)
    body = await gql(
        client,
        ADJUST,
        {"i": {"membershipId": me["id"], "points": 50, "reason": " ", "idempotencyKey": key()}},
        token=m.admin,
    )
    assert body["data"]["pointsAdjust"]["errors"][0]["field"] == "reason"
    idem = key()
    request = {"membershipId": me["id"], "points": 50, "reason": "补录积分", "idempotencyKey": idem}
    for _ in range(2):
        done = await ok(client, ADJUST, "pointsAdjust", request, m.admin)
        assert done["membership"]["points"] == 60
    body = await gql(client, ADJUST, {"i": {**request, "points": 51}}, token=m.admin)
    assert body["data"]["pointsAdjust"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    body = await gql(
        client,
        ADJUST,
        {"i": {**request, "points": -61, "idempotencyKey": key()}},
        token=m.admin,
    )
    assert body["data"]["pointsAdjust"]["errors"][0]["code"] == "INSUFFICIENT_POINTS"
    done = await ok(
        client, ADJUST, "pointsAdjust", {**request, "points": -60, "idempotencyKey": key()}, m.admin
    )
    assert done["membership"]["points"] == 0
    records = await AuditRecord.filter(action="pointsAdjust", target=me["id"]).order_by("id")
    assert [r.details for r in records] == [
        {"points": 50, "reason": "补录积分"},
        {"points": -60, "reason": "补录积分"},
    ]
    # Another merchant's admin cannot touch this member.
    other = await make_merchant(client, m.operator)
    body = await gql(client, ADJUST, {"i": {**request, "idempotencyKey": key()}}, token=other.admin)
    assert body["data"]["pointsAdjust"]["errors"][0]["code"] == "NOT_FOUND"
    await ledger_ok()


# --- tiers -------------------------------------------------------------------------------------


async def test_tiers_upgrade_at_once_and_downgrade_only_at_period_end(app, client, sms):
    from domain.members import tiers

    m = await make_merchant(client)
    await programme(client, m)
    for name, rank, spend in (("普通", 0, None), ("银卡", 1, 50_000), ("金卡", 2, 100_000)):
        await ok(
            client,
            TIER_CREATE,
            "tierCreate",
            {"merchantId": m.merchant_id, "name": name, "rank": rank, "minSpend12m": spend},
            m.admin,
        )
    body = await gql(
        client,
        TIER_CREATE,
        {"i": {"merchantId": m.merchant_id, "name": "重复", "rank": 2}},
        token=m.admin,
    )
    assert body["data"]["tierCreate"]["errors"][0]["field"] == "rank"
    token, card = await consumer_with_card(app, client, sms, m)
    big = (await pay(client, m, card["id"], 60_000))["payment"]
    await accrue()
    me = await membership_at(client, token, m)
    assert me["tier"]["name"] == "银卡"
    assert me["tierProgress"] == {
        "spend12m": 60_000,
        "points12m": 600,
        "nextTier": {"name": "金卡"},
        "spendToNext": 40_000,
        "pointsToNext": None,
    }
    await refund(client, m, big["id"], 60_000)  # no longer qualifies: stays silver for now
    await accrue()
    assert (await membership_at(client, token, m))["tier"]["name"] == "银卡"
    clock.advance(timedelta(days=366))
    try:
        await tiers.review_due()
    finally:
        clock.reset()
    me = await membership_at(client, token, m)
    assert me["tier"]["name"] == "普通"
    assert [c["reason"] for c in me["tierHistory"]] == ["PERIOD_END", "UPGRADE", "UPGRADE"]
    await ledger_ok()


# --- expiry ------------------------------------------------------------------------------------


async def test_expiry_moves_exactly_the_expired_lots(app, client, sms):
    from domain.ledger.models import Account
    from domain.members.models import PointsLot

    m = await make_merchant(client)
    await programme(client, m, expiryMode="DAYS", expiryDays=30)
    gift = await reward(client, m, 30)
    token, card = await consumer_with_card(app, client, sms, m)
    await pay(client, m, card["id"], 10_000)  # lot A: 100 points, expires on day 30
    await accrue()
    await ok(client, REDEEM, "redeem", {"rewardId": gift, "idempotencyKey": key()}, token)
    try:
        clock.advance(timedelta(days=20))
        # Lot B: 70 points, expires on day 50 (the terminal's key outlives the clock jump).
        later = await gql(
            client,
            PAY,
            {
                "i": {
                    "storeId": m.store_id,
                    "cardId": card["id"],
                    "amount": 7_000,
                    "idempotencyKey": key(),
                }
            },
            terminal_key=m.terminal_key,
        )
        assert later["data"]["pay"]["errors"] == [], later
        await accrue()
        clock.advance(timedelta(days=11))  # day 31: A is past its date, B is not
        await mature_and_expire()
        await mature_and_expire()  # a second sweep finds nothing more
    finally:
        clock.reset()
    me = await membership_at(client, token, m)
    assert me["points"] == 70
    assert history(me)[0]["type"] == "EXPIRE" and history(me)[0]["points"] == -70
    lots = {lot.points: lot for lot in await PointsLot.filter(membership_id=me["id"])}
    assert (lots[100].status, lots[100].remaining, lots[100].expired) == ("EXPIRED", 0, 70)
    assert (lots[70].status, lots[70].remaining, lots[70].expired) == ("AVAILABLE", 70, 0)
    expired = await Account.filter(owner_id=m.merchant_id, kind="POINTS_EXPIRED")
    assert sum(a.balance for a in expired) == 70
    await ledger_ok()


# --- the merchant's view -----------------------------------------------------------------------


async def test_member_list_search_and_filters_and_masked_profile(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m)
    phone = "135" + f"{secrets.randbelow(10**8):08d}"
    token = await new_consumer(app, sms, phone)
    card = await make_card(client, m, load=100_000, holder_phone=phone)
    body = await gql(
        client,
        """mutation($i: MemberProfileUpdateInput!) { memberProfileUpdate(input: $i) {
             memberProfile { nickname realNameMasked idNumberMasked } errors { code field } } }""",
        {"i": {"nickname": "小明", "realName": "张小明", "idNumber": "11010519491231002X"}},
        token=token,
    )
    assert body["data"]["memberProfileUpdate"]["errors"][0]["field"] == "personalDataConsent"
    body = await gql(
        client,
        """mutation($i: MemberProfileUpdateInput!) { memberProfileUpdate(input: $i) {
             memberProfile { nickname realNameMasked idNumberMasked } errors { code field } } }""",
        {
            "i": {
                "nickname": "小明",
                "realName": "张小明",
                "idNumber": "11010519491231002X",
                "personalDataConsent": True,
            }
        },
        token=token,
    )
    assert body["data"]["memberProfileUpdate"]["memberProfile"] == {
        "nickname": "小明",
        "realNameMasked": "张**",
        "idNumberMasked": "110***********002X",
    }
    other_token, other_card = await consumer_with_card(app, client, sms, m, load=1000)
    await pay(client, m, card["id"], 30_000)
    await pay(client, m, other_card["id"], 500)
    await accrue()

    async def search(**v: Any) -> list[dict[str, Any]]:
        body = await gql(client, MEMBERS, {"m": m.merchant_id, **v}, token=m.staff)
        assert "errors" not in body, body
        return [e["node"] for e in body["data"]["members"]["edges"]]

    assert len(await search()) == 2
    (found,) = await search(search=phone)
    assert found["member"] == {
        "nickname": "小明",
        "maskedPhone": phone[:3] + "****" + phone[-4:],
        "idNumberMasked": "110***********002X",
        "realNameMasked": "张**",
    }
    assert [x["id"] for x in await search(search=phone[-4:])] == [found["id"]]
    assert [x["id"] for x in await search(search="小")] == [found["id"]]
    assert [x["totalSpend"] for x in await search(minSpend=10_000)] == [30_000]
    assert [x["totalSpend"] for x in await search(maxSpend=10_000)] == [500]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await search(after=future) == []
    # The encrypted ID number is stored, never the number itself.
    from domain.members.models import MemberProfile

    raw = await MemberProfile.filter(nickname="小明").values_list("id_number_encrypted", flat=True)
    assert raw and all("11010519491231002X" not in r for r in raw)
    # Another merchant sees nothing of these members.
    other = await make_merchant(client, m.operator)
    body = await gql(client, MEMBERS, {"m": m.merchant_id}, token=other.staff)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert other_token


# --- redemption ---------------------------------------------------------------------------------


async def test_redeem_is_idempotent_and_keeps_limits_and_validity(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m)
    limited = await reward(client, m, 10, perMemberLimit=2, stock=5)
    token, card = await consumer_with_card(app, client, sms, m)
    await pay(client, m, card["id"], 5_000)  # 50 points
    await accrue()
    idem = key()
    first = await ok(client, REDEEM, "redeem", {"rewardId": limited, "idempotencyKey": idem}, token)
    replay = await ok(
        client, REDEEM, "redeem", {"rewardId": limited, "idempotencyKey": idem}, token
    )
    assert replay["redemption"]["id"] == first["redemption"]["id"]
    await ok(client, REDEEM, "redeem", {"rewardId": limited, "idempotencyKey": key()}, token)
    body = await gql(
        client, REDEEM, {"i": {"rewardId": limited, "idempotencyKey": key()}}, token=token
    )
    assert body["data"]["redeem"]["errors"][0]["code"] == "LIMIT_REACHED"
    pricey = await reward(client, m, 31)
    body = await gql(
        client, REDEEM, {"i": {"rewardId": pricey, "idempotencyKey": key()}}, token=token
    )
    assert body["data"]["redeem"]["errors"][0]["code"] == "INSUFFICIENT_POINTS"
    await ok(client, REWARD_UPDATE, "rewardUpdate", {"rewardId": pricey, "active": False}, m.admin)
    body = await gql(
        client, REDEEM, {"i": {"rewardId": pricey, "idempotencyKey": key()}}, token=token
    )
    assert body["data"]["redeem"]["errors"][0]["code"] == "REWARD_UNAVAILABLE"
    me = await membership_at(client, token, m)
    assert me["points"] == 30 and len(me["redemptions"]) == 2
    # Someone who is not a member cannot redeem.
    stranger = await new_consumer(app, sms)
    body = await gql(
        client, REDEEM, {"i": {"rewardId": limited, "idempotencyKey": key()}}, token=stranger
    )
    assert body["data"]["redeem"]["errors"][0]["code"] == "NOT_A_MEMBER"
    await ledger_ok()


async def test_fifty_members_race_for_the_last_ten_items(app, client, sms):
    m = await make_merchant(client)
    await programme(client, m, points_per_yuan=None)
    item = await reward(client, m, 100, stock=10)
    members = []
    for _ in range(50):
        token = await new_consumer(app, sms)
        joined = await ok(client, JOIN, "membershipJoin", {"merchantId": m.merchant_id}, token)
        await ok(
            client,
            ADJUST,
            "pointsAdjust",
            {
                "membershipId": joined["membership"]["id"],
                "points": 100,
                "reason": "活动赠送",
                "idempotencyKey": key(),
            },
            m.admin,
        )
        members.append(token)

    async def attempt(token: str) -> dict[str, Any]:
        body = await gql(
            client, REDEEM, {"i": {"rewardId": item, "idempotencyKey": key()}}, token=token
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["redeem"]
        return result

    results = await asyncio.gather(*(attempt(t) for t in members))
    won = [r for r in results if not r["errors"]]
    lost = [r["errors"][0]["code"] for r in results if r["errors"]]
    assert len(won) == 10
    assert lost == ["OUT_OF_STOCK"] * 40
    body = await gql(
        client,
        "query($m: ID!) { loyaltyProgramme(merchantId: $m) { rewards { id stock redeemedCount } } }",
        {"m": m.merchant_id},
        token=m.admin,
    )
    assert body["data"]["loyaltyProgramme"]["rewards"] == [
        {"id": item, "stock": 0, "redeemedCount": 10}
    ]
    winners = [t for t, r in zip(members, results, strict=True) if not r["errors"]]
    for token in winners[:3]:
        assert (await membership_at(client, token, m))["points"] == 0
    await ledger_ok()


# --- ledger verify covers points ----------------------------------------------------------------


async def test_ledger_verify_notices_tampered_points(app, client, sms):
    from domain.members.models import PointsAccrual, PointsLot
    from domain.members.verify import verify as verify_points

    m = await make_merchant(client)
    await programme(client, m)
    token, card = await consumer_with_card(app, client, sms, m)
    paid = (await pay(client, m, card["id"], 10_000))["payment"]
    await refund(client, m, paid["id"], 10_000)
    await accrue()
    await ledger_ok()
    me = await membership_at(client, token, m)
    await pay(client, m, card["id"], 5_000)
    await accrue()
    lot = await PointsLot.filter(membership_id=me["id"], status="AVAILABLE").first()
    accrual = await PointsAccrual.get(source_id=paid["id"])
    from domain.ledger.verify import Report

    try:
        await PointsLot.filter(id=lot.id).update(remaining=lot.remaining - 1)
        await PointsAccrual.filter(id=accrual.id).update(clawed_points=accrual.points - 1)
        report = Report()
        await verify_points(report)
        found = "\n".join(report.problems)
        assert "available points differ from their available lots" in found
        assert "fully refunded payment kept some of its points" in found
    finally:
        await PointsLot.filter(id=lot.id).update(remaining=lot.remaining)
        await PointsAccrual.filter(id=accrual.id).update(clawed_points=accrual.points)
    await ledger_ok()


async def test_the_job_cursor_passes_settled_payments_but_never_a_failed_one(
    app, client, sms, monkeypatch
):
    from domain.members import accrual
    from domain.members.models import PointsAccrual, PointsJobCursor

    m = await make_merchant(client)
    await programme(client, m)
    token, card = await consumer_with_card(app, client, sms, m)
    first, failing, last = [
        (await pay(client, m, card["id"], 1000))["payment"]["id"] for _ in "abc"
    ]
    monkeypatch.setattr(accrual, "MARGIN", timedelta(0))  # no commit is in flight here
    real = accrual.accrue_payment

    async def flaky(row: dict[str, Any]) -> int:
        if row["id"] == failing:
            raise RuntimeError("a database blip")
        return await real(row)

    monkeypatch.setattr(accrual, "accrue_payment", flaky)
    await accrue()
    done = set(await PointsAccrual.filter(kind="PAYMENT").values_list("source_id", flat=True))
    assert first in done and last in done and failing not in done
    position = (await PointsJobCursor.get(name="payments")).position
    assert first <= position < failing
    monkeypatch.setattr(accrual, "accrue_payment", real)
    await accrue()
    assert await PointsAccrual.filter(source_id=failing).exists()
    assert (await PointsJobCursor.get(name="payments")).position > last
    assert (await membership_at(client, token, m))["points"] == 30
    await ledger_ok()
