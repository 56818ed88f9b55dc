"""Escrow custody (资金存管) through the API: the split of prepaid money, the custodian's view and
withdrawals, full custody with release on consumption, the daily check, and conservation of
money across a whole random flow."""

from __future__ import annotations

import random
from typing import Any

from domain.sql import fetch
from tests.api.test_holds import capture, hold, release
from tests.api.test_money import ledger_ok
from tests.api.test_session_cards import redeem, session_card
from tests.helpers import (
    PASSWORD,
    REFUND,
    TOP_UP,
    MerchantSetup,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
    token_for,
    uid,
)

ESCROW = """query($id: ID!) { escrowAccount(merchantId: $id) {
  merchantId custodian bankAccountLast4 policy ratioPercent outstanding required held short
  lastCheck { day short held required } movements(first: 50) { kind amount } } }"""
OPEN = """mutation($i: EscrowAccountOpenInput!) { escrowAccountOpen(input: $i) {
  escrowAccount { policy ratioPercent held required } errors { code field message } } }"""
WITHDRAW = """mutation($i: EscrowWithdrawInput!) { escrowWithdraw(input: $i) {
  escrowAccount { held required } errors { code field message } } }"""
DEPOSIT = """mutation($i: EscrowDepositInput!) { escrowDeposit(input: $i) {
  escrowAccount { held required short } errors { code field message } } }"""


async def official(client: Any, operator: str, role: str, organisation: str, region: str) -> str:
    name = uid(role.lower()[:3])
    body = await gql(
        client,
        """mutation($i: OfficialCreateInput!) { officialCreate(input: $i) {
             official { id } errors { code } } }""",
        {
            "i": {
                "username": name,
                "password": PASSWORD,
                "role": role,
                "organisation": organisation,
                "regionCode": region,
            }
        },
        token=operator,
    )
    assert body["data"]["officialCreate"]["errors"] == [], body
    return await token_for(client, name, PASSWORD)


async def escrow_of(client: Any, token: str, merchant_id: str) -> dict[str, Any] | None:
    body = await gql(client, ESCROW, {"id": merchant_id}, token=token)
    assert "errors" not in body, body
    found: dict[str, Any] | None = body["data"]["escrowAccount"]
    return found


async def open_escrow(
    client: Any, m: MerchantSetup, custodian: str, policy: str = "RATIO", **extra: Any
) -> dict[str, Any]:
    body = await gql(
        client,
        OPEN,
        {
            "i": {
                "merchantId": m.merchant_id,
                "custodian": custodian,
                "bankAccountNo": "6222 0202 0011 2233",
                "policy": policy,
                **extra,
            }
        },
        token=m.operator,
    )
    payload: dict[str, Any] = body["data"]["escrowAccountOpen"]
    return payload


async def cash_top_up(client: Any, m: MerchantSetup, card_id: str, amount: int) -> None:
    body = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card_id, "amount": amount, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["topUp"]["errors"] == [], body


async def test_prepaid_principal_is_split_by_the_rulebook_ratio_and_bonus_is_not_escrowed(
    client,
):
    beijing = await make_merchant(client)  # 110105: Beijing, 40 %
    product = await make_product(
        client, beijing, "NAMED", topUpBonusRules=[{"minAmount": 50000, "bonus": 5000}]
    )
    card = await make_card(client, beijing, product_id=product, load=10000)
    view = await escrow_of(client, beijing.admin, beijing.merchant_id)
    assert view is not None
    assert (view["policy"], view["ratioPercent"], view["custodian"]) == ("RATIO", 40, None)
    assert (view["outstanding"], view["required"], view["held"]) == (10000, 4000, 4000)

    await cash_top_up(client, beijing, card["id"], 50000)  # + 5000 bonus, not money
    view = await escrow_of(client, beijing.admin, beijing.merchant_id)
    assert (view["outstanding"], view["held"]) == (60000, 24000)

    shenzhen = await make_merchant(client, region="440305")  # national: 20 %
    await make_card(client, shenzhen, load=10001)
    view = await escrow_of(client, shenzhen.admin, shenzhen.merchant_id)
    assert (view["ratioPercent"], view["held"], view["required"]) == (20, 2001, 2001)
    await ledger_ok()


async def test_the_custodian_sees_its_merchants_and_never_releases_below_required(client):
    m = await make_merchant(client)
    bank = f"存管银行-{uid('b')}"
    custodian = await official(client, m.operator, "CUSTODIAN", bank, "110000")
    other_bank = await official(client, m.operator, "CUSTODIAN", "别的银行", "110000")
    regulator = await official(client, m.operator, "REGULATOR", "北京市商务局", "110000")
    far_regulator = await official(client, m.operator, "REGULATOR", "江苏省商务厅", "320000")
    low = await open_escrow(client, m, bank, ratioPercent=30)
    assert low["errors"][0]["field"] == "ratioPercent"  # below Beijing's 40 %
    opened = await open_escrow(client, m, bank)
    assert opened["errors"] == [], opened
    again = await open_escrow(client, m, bank)
    assert again["errors"][0]["code"] == "ALREADY_EXISTS"

    card = await make_card(client, m, load=60000)
    assert (await pay(client, m, card["id"], 30000))["errors"] == []
    view = await escrow_of(client, custodian, m.merchant_id)
    assert view["custodian"] == bank and view["bankAccountLast4"] == "2233"
    assert (view["outstanding"], view["required"], view["held"]) == (30000, 12000, 24000)
    assert await escrow_of(client, other_bank, m.merchant_id) is None
    assert (await escrow_of(client, regulator, m.merchant_id))["held"] == 24000
    assert await escrow_of(client, far_regulator, m.merchant_id) is None
    listed = await gql(client, "{ custodianEscrowAccounts { merchantId held } }", token=custodian)
    assert listed["data"]["custodianEscrowAccounts"] == [
        {"merchantId": m.merchant_id, "held": 24000}
    ]

    def withdrawal(amount: int, idem: str | None = None) -> dict[str, Any]:
        return {
            "i": {
                "merchantId": m.merchant_id,
                "amount": amount,
                "reason": "月度结算",
                "idempotencyKey": idem or key(),
            }
        }

    too_much = await gql(client, WITHDRAW, withdrawal(12001), token=custodian)
    assert too_much["data"]["escrowWithdraw"]["errors"][0]["code"] == "ESCROW_BELOW_REQUIRED"
    foreign = await gql(client, WITHDRAW, withdrawal(1), token=other_bank)
    assert foreign["data"]["escrowWithdraw"]["errors"][0]["code"] == "NOT_FOUND"
    k = key()
    for _ in range(2):  # a retry with the same key moves nothing more
        done = await gql(client, WITHDRAW, withdrawal(12000, k), token=custodian)
        assert done["data"]["escrowWithdraw"]["errors"] == [], done
        assert done["data"]["escrowWithdraw"]["escrowAccount"]["held"] == 12000
    deposit = await gql(
        client,
        DEPOSIT,
        {"i": {"merchantId": m.merchant_id, "amount": 1000, "idempotencyKey": key()}},
        token=m.admin,
    )
    assert deposit["data"]["escrowDeposit"]["escrowAccount"]["held"] == 13000
    kinds = [mv["kind"] for mv in (await escrow_of(client, m.admin, m.merchant_id))["movements"]]
    assert kinds[:2] == ["ESCROW_DEPOSIT", "ESCROW_WITHDRAW"] and "ISSUE" in kinds
    await ledger_ok()


async def test_full_custody_releases_what_is_consumed_and_refunds_go_back_into_escrow(client):
    from app.sweeper import sweep

    m = await make_merchant(client)
    opened = await open_escrow(client, m, "安心付银行", "FULL_CUSTODY")
    assert opened["errors"] == [] and opened["escrowAccount"]["ratioPercent"] == 100
    card = await make_card(client, m, load=10000)
    payment = (await pay(client, m, card["id"], 3000))["payment"]
    assert (await escrow_of(client, m.admin, m.merchant_id))["held"] == 10000
    await sweep()
    view = await escrow_of(client, m.admin, m.merchant_id)
    assert (view["held"], view["required"], view["outstanding"]) == (7000, 7000, 7000)

    body = await gql(
        client,
        REFUND,
        {"i": {"paymentId": payment["id"], "amount": 1000, "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["refund"]["errors"] == [], body
    view = await escrow_of(client, m.admin, m.merchant_id)
    assert (view["held"], view["required"]) == (8000, 8000)

    sessions = await session_card(client, m, count=4, price=4000)
    assert (await redeem(client, m, sessions["id"]))["errors"] == []
    await sweep()
    view = await escrow_of(client, m.admin, m.merchant_id)
    assert (view["held"], view["outstanding"]) == (8000 + 3000, 8000 + 3000)
    await ledger_ok()


async def test_the_daily_check_records_a_shortfall_until_it_is_covered(client):
    from domain.escrow.service import daily_check

    m = await make_merchant(client, region="440305")  # 20 % while no account is open
    await make_card(client, m, load=10000)
    bank = f"深圳存管银行-{uid('b')}"
    opened = await open_escrow(client, m, bank, ratioPercent=60)  # now 60 %
    assert opened["escrowAccount"]["required"] == 6000
    assert opened["escrowAccount"]["held"] == 2000
    short = await daily_check("2026-11-23")
    assert m.merchant_id in {p.merchant_id for p in short}
    view = await escrow_of(client, m.admin, m.merchant_id)
    assert view["short"] is True and view["lastCheck"] == {
        "day": "2026-11-23",
        "short": True,
        "held": 2000,
        "required": 6000,
    }
    shortfalls = "query($d: String) { escrowShortfalls(day: $d) { merchantId held required } }"
    watchers = {
        "guangdong": await official(client, m.operator, "REGULATOR", "广东省商务厅", "440000"),
        "custodian": await official(client, m.operator, "CUSTODIAN", bank, "440000"),
        "beijing": await official(client, m.operator, "REGULATOR", "北京市商务局", "110000"),
        "other bank": await official(client, m.operator, "CUSTODIAN", "别的银行", "440000"),
    }
    seen = {}
    for who, token in watchers.items():
        body = await gql(client, shortfalls, {"d": "2026-11-23"}, token=token)
        seen[who] = [
            w for w in body["data"]["escrowShortfalls"] if w["merchantId"] == m.merchant_id
        ]
    assert (
        seen["guangdong"]
        == seen["custodian"]
        == [{"merchantId": m.merchant_id, "held": 2000, "required": 6000}]
    )
    assert seen["beijing"] == seen["other bank"] == []
    body = await gql(
        client,
        DEPOSIT,
        {"i": {"merchantId": m.merchant_id, "amount": 4000, "idempotencyKey": key()}},
        token=m.admin,
    )
    assert body["data"]["escrowDeposit"]["escrowAccount"]["short"] is False
    assert m.merchant_id not in {p.merchant_id for p in await daily_check("2026-11-24")}


async def money_books(merchant_id: str) -> tuple[int, int, int]:
    """(money in by its business records less payouts of cancelled cards, the same by the
    merchant's escrow+operating accounts, and as card liabilities + holds + consumed principal)."""
    from domain.db import connection

    conn = connection()
    came_in = await fetch(
        conn,
        "SELECT COALESCE(SUM(e.amount), 0) AS v FROM ledger_entries e"
        " JOIN ledger_transfers t ON t.id = e.transfer_id"
        " JOIN ledger_accounts a ON a.id = e.account_id"
        " JOIN cards c ON c.id = a.owner_id"
        " WHERE t.kind IN ('ISSUE', 'TOPUP') AND a.kind = 'CARD_PRINCIPAL'"
        " AND c.merchant_id = $1",
        merchant_id,
    )
    pools = await fetch(
        conn,
        "SELECT COALESCE(-SUM(balance), 0) AS v FROM ledger_accounts WHERE owner_id = $1"
        " AND kind IN ('MERCHANT_ESCROW', 'MERCHANT_OPERATING', 'MERCHANT_CASH')",
        merchant_id,
    )
    owed = await fetch(
        conn,
        "SELECT COALESCE(SUM(a.balance), 0) AS v FROM ledger_accounts a JOIN cards c"
        " ON c.id = a.owner_id WHERE c.merchant_id = $1 AND a.kind = 'CARD_PRINCIPAL'",
        merchant_id,
    )
    held = await fetch(
        conn,
        "SELECT COALESCE(SUM(principal_amount), 0) AS v FROM holds WHERE merchant_id = $1"
        " AND status = 'PENDING'",
        merchant_id,
    )
    consumed = await fetch(
        conn,
        "SELECT COALESCE(SUM(principal_amount - refunded_principal), 0) AS v FROM payments"
        " WHERE merchant_id = $1",
        merchant_id,
    )
    paid_out = await fetch(
        conn,
        "SELECT COALESCE(SUM(principal_refunded), 0) AS v FROM card_cancellations"
        " WHERE merchant_id = $1 AND status = 'COMPLETED'",
        merchant_id,
    )
    return (
        int(came_in[0]["v"]) - int(paid_out[0]["v"]),
        int(pools[0]["v"]),
        int(owed[0]["v"]) + int(held[0]["v"]) + int(consumed[0]["v"]),
    )


async def test_money_is_conserved_and_escrow_never_short_across_a_random_flow(client):
    from app.sweeper import sweep

    rng = random.Random(20261123)
    for policy in ("RATIO", "FULL_CUSTODY"):
        m = await make_merchant(client)
        assert (await open_escrow(client, m, "一致性银行", policy))["errors"] == []
        bonus_product = await make_product(
            client, m, "NAMED", topUpBonusRules=[{"minAmount": 5000, "bonus": 700}]
        )
        cards_ = [await make_card(client, m, product_id=bonus_product, load=20000)]
        cards_.append(await make_card(client, m, kind="BEARER", load=9000))
        sessions = await session_card(client, m, count=5, price=5003)
        payments: list[str] = []
        holds_: list[str] = []
        cancelled = 0
        for step in range(40):
            card = rng.choice(cards_)["id"]
            op = rng.choice(
                ["top", "pay", "pay", "refund", "hold", "settle", "redeem", "sweep", "cancel"]
            )
            if op == "top":
                await cash_top_up(client, m, card, rng.choice([3000, 5000, 8000]))
            elif op == "pay":
                got = await pay(client, m, card, rng.randint(1, 9000))
                if not got["errors"]:
                    payments.append(got["payment"]["id"])
            elif op == "refund" and payments:
                await gql(
                    client,
                    REFUND,
                    {
                        "i": {
                            "paymentId": rng.choice(payments),
                            "amount": rng.randint(1, 2000),
                            "idempotencyKey": key(),
                        }
                    },
                    token=m.staff,
                )  # REFUND_EXCEEDS_PAYMENT is a fine outcome too
            elif op == "hold":
                got = await hold(client, m, card, rng.randint(1, 4000))
                if not got["errors"]:
                    holds_.append(got["hold"]["id"])
            elif op == "settle" and holds_:
                h = holds_.pop(rng.randrange(len(holds_)))
                if rng.random() < 0.5:
                    await capture(client, m, h, rng.randint(1, 100))
                else:
                    await release(client, m, h)
            elif op == "redeem":
                await redeem(client, m, sessions["id"])
            elif op == "sweep":
                await sweep()
            elif op == "cancel" and len(cards_) > 1 and not holds_:
                gone = cards_.pop(rng.randrange(len(cards_)))
                asked = await gql(
                    client,
                    """mutation($i: CardCancelRequestInput!) { cardCancelRequest(input: $i) {
                         cancellation { id } errors { code } } }""",
                    {
                        "i": {
                            "cardId": gone["id"],
                            "reason": "退卡",
                            "payoutMethod": "BANK_ACCOUNT",
                            "bankAccountNo": "6222020200112233",
                            "accountName": "李四",
                        }
                    },
                    token=m.staff,
                )
                request = asked["data"]["cardCancelRequest"]["cancellation"]["id"]
                done = await gql(
                    client,
                    """mutation($i: CardCancellationIdInput!) { cardCancelApprove(input: $i) {
                         errors { code } } }""",
                    {"i": {"cancellationId": request}},
                    token=m.admin,
                )
                assert done["data"]["cardCancelApprove"]["errors"] == [], done
                cancelled += 1
                cards_.append(await make_card(client, m, kind="BEARER", load=7000))
            came_in, pools, accounted = await money_books(m.merchant_id)
            assert came_in == pools == accounted, (policy, step, op)
            view = await escrow_of(client, m.admin, m.merchant_id)
            assert view["held"] >= view["required"], (policy, step, op, view)
        assert cancelled, "the flow should have paid out at least one cancelled card"
        await ledger_ok()
