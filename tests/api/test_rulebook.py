"""Local rules enforced where money moves: Jiangsu's education limits, Shanghai's escrow lines."""

from __future__ import annotations

from tests.api.test_escrow import escrow_of, open_escrow
from tests.helpers import CARD_ISSUE, PRODUCT_CREATE, gql, key, make_card, make_merchant


async def test_jiangsu_education_prepayments_cover_at_most_60_sessions_and_3_months(client):
    school = await make_merchant(client, region="320102", industry="EDUCATION")

    async def product(**extra):
        body = await gql(
            client,
            PRODUCT_CREATE,
            {"i": {"merchantId": school.merchant_id, "name": "课时卡", "kind": "SESSION", **extra}},
            token=school.admin,
        )
        return body["data"]["cardProductCreate"]

    forever = await product(sessionCount=20, sessionPrice=20000)
    assert forever["errors"][0]["code"] == "PREPAYMENT_LIMIT_EXCEEDED"
    assert forever["errors"][0]["field"] == "validityDays"
    big_pack = await product(sessionCount=80, sessionPrice=80000, validityDays=90)
    assert big_pack["errors"][0]["code"] == "PREPAYMENT_LIMIT_EXCEEDED"
    ok = await product(sessionCount=30, sessionPrice=30000, validityDays=90)
    assert ok["errors"] == [], ok

    three_packs = await gql(
        client,
        CARD_ISSUE,
        {
            "i": {
                "productId": ok["cardProduct"]["id"],
                "initialLoad": 90000,
                "idempotencyKey": key(),
            }
        },
        token=school.staff,
    )
    error = three_packs["data"]["cardIssue"]["errors"][0]
    assert error["code"] == "PREPAYMENT_LIMIT_EXCEEDED" and "60" in error["message"]
    card = await make_card(
        client, school, product_id=ok["cardProduct"]["id"], kind="SESSION", load=60000
    )
    assert card["balance"] == 60000

    # The same product is fine for a Beijing school: the limit is Jiangsu's.
    beijing_school = await make_merchant(client, industry="EDUCATION")
    body = await gql(
        client,
        PRODUCT_CREATE,
        {
            "i": {
                "merchantId": beijing_school.merchant_id,
                "name": "课时卡",
                "kind": "SESSION",
                "sessionCount": 80,
                "sessionPrice": 800000,
            }
        },
        token=beijing_school.admin,
    )
    assert body["data"]["cardProductCreate"]["errors"] == []


async def test_shanghai_escrow_below_its_lines_is_flagged(client):
    shop = await make_merchant(client, region="310101")
    await make_card(client, shop, load=10000)  # 20 % held by the national ratio
    opened = await open_escrow(client, shop, "上海存管银行", ratioPercent=50)
    assert opened["errors"] == []
    view = await escrow_of(client, shop.admin, shop.merchant_id)
    assert (view["held"], view["required"], view["short"]) == (2000, 5000, True)
    body = await gql(
        client,
        "query($id: ID!) { escrowAccount(merchantId: $id) { warningLevel } }",
        {"id": shop.merchant_id},
        token=shop.admin,
    )
    assert body["data"]["escrowAccount"]["warningLevel"] == "SEVERE"
