"""Cards and money through the API: issue, top-up, pay, refund, void, lifecycle, rulebook."""

from __future__ import annotations

import asyncio

from tests.helpers import (
    CARD,
    REFUND,
    TOP_UP,
    consumer_token,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
    top_code,
)


async def ledger_ok() -> None:
    from domain.ledger.verify import verify
    from domain.payments.verify import verify as verify_payments

    report = await verify()
    await verify_payments(report)
    assert report.ok, report.problems


async def test_issue_top_up_with_bonus_pay_and_statement(client):
    m = await make_merchant(client)
    product = await make_product(
        client,
        m,
        "NAMED",
        topUpBonusRules=[
            {"minAmount": 50000, "bonus": 5000},
            {"minAmount": 100000, "bonus": 12000},
        ],
    )
    card = await make_card(client, m, product_id=product, load=10000)
    assert card["number"].isdigit() and len(card["number"]) == 19
    assert card["balance"] == 10000 and card["bonusBalance"] == 0

    body = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 50000, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    top = body["data"]["topUp"]
    assert top["errors"] == [] and top["topUp"]["status"] == "SUCCEEDED"
    assert top["topUp"]["bonus"] == 5000
    assert top["topUp"]["card"]["balance"] == 65000

    paid = await pay(client, m, card["id"], 60500)
    assert paid["errors"] == []
    payment = paid["payment"]
    # Principal first by default: 60000 principal, 500 bonus.
    assert (payment["principalAmount"], payment["bonusAmount"]) == (60000, 500)
    assert payment["card"]["balance"] == 4500

    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    lines = [e["node"] for e in body["data"]["card"]["transactions"]["edges"]]
    assert [(line["type"], line["amount"], line["balanceAfter"]) for line in lines] == [
        ("PAYMENT", -60500, 4500),
        ("TOPUP", 55000, 65000),
        ("ISSUE", 10000, 10000),
    ]
    await ledger_ok()


async def test_insufficient_funds_moves_nothing(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=1000)
    result = await pay(client, m, card["id"], 1001)
    assert result["payment"] is None
    assert result["errors"][0]["code"] == "INSUFFICIENT_FUNDS"
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 1000
    await ledger_ok()


async def test_idempotent_retry_replays_and_different_request_is_refused(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=5000)
    k = key()
    first = await pay(client, m, card["id"], 1200, idem=k)
    again = await pay(client, m, card["id"], 1200, idem=k)
    assert first["payment"]["id"] == again["payment"]["id"]
    other = await pay(client, m, card["id"], 1300, idem=k)
    assert other["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 3800


async def test_concurrent_retries_of_one_key_apply_once(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=5000)
    k = key()
    results = await asyncio.gather(*(pay(client, m, card["id"], 700, idem=k) for _ in range(10)))
    ids = {r["payment"]["id"] for r in results if r["payment"]}
    assert len(ids) == 1, results
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 4300
    await ledger_ok()


async def test_concurrent_spends_never_overdraw(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=100_000)
    results = await asyncio.gather(*(pay(client, m, card["id"], 1000) for _ in range(200)))
    ok = [r for r in results if r["payment"]]
    refused = [r for r in results if r["errors"]]
    assert len(ok) == 100
    assert {r["errors"][0]["code"] for r in refused} == {"INSUFFICIENT_FUNDS"}
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 0
    await ledger_ok()


async def test_partial_refunds_capped_and_returned_to_sub_balances(client):
    m = await make_merchant(client)
    product = await make_product(
        client, m, "NAMED", topUpBonusRules=[{"minAmount": 10000, "bonus": 2000}]
    )
    card = await make_card(client, m, product_id=product)
    await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 10000, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    paid = (await pay(client, m, card["id"], 12000))["payment"]
    assert (paid["principalAmount"], paid["bonusAmount"]) == (10000, 2000)

    async def refund(amount):
        body = await gql(
            client,
            REFUND,
            {"i": {"paymentId": paid["id"], "amount": amount, "idempotencyKey": key()}},
            token=m.staff,
        )
        return body["data"]["refund"]

    first = await refund(6000)
    assert first["errors"] == []
    assert first["refund"]["principalAmount"] + first["refund"]["bonusAmount"] == 6000
    assert first["refund"]["payment"]["status"] == "PARTIALLY_REFUNDED"
    too_much = await refund(6001)
    assert too_much["errors"][0]["code"] == "REFUND_EXCEEDS_PAYMENT"
    rest = await refund(6000)
    assert rest["refund"]["payment"]["status"] == "REFUNDED"
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    c = body["data"]["card"]
    assert (c["principalBalance"], c["bonusBalance"]) == (10000, 2000)
    await ledger_ok()


async def test_concurrent_refunds_cannot_exceed_payment(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=10000)
    paid = (await pay(client, m, card["id"], 10000))["payment"]
    results = await asyncio.gather(
        *(
            gql(
                client,
                REFUND,
                {"i": {"paymentId": paid["id"], "amount": 3000, "idempotencyKey": key()}},
                token=m.staff,
            )
            for _ in range(8)
        )
    )
    ok = [r for r in results if r["data"]["refund"]["refund"]]
    assert len(ok) == 3
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 9000
    await ledger_ok()


async def test_void_once_only(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=5000)
    paid = (await pay(client, m, card["id"], 2000))["payment"]
    void = """mutation($i: PaymentVoidInput!) { paymentVoid(input: $i) {
      refund { kind amount payment { status } } errors { code } } }"""
    first = await gql(
        client, void, {"i": {"paymentId": paid["id"], "idempotencyKey": key()}}, token=m.staff
    )
    assert first["data"]["paymentVoid"]["refund"]["payment"]["status"] == "VOIDED"
    second = await gql(
        client, void, {"i": {"paymentId": paid["id"], "idempotencyKey": key()}}, token=m.staff
    )
    assert second["data"]["paymentVoid"]["errors"][0]["code"] == "ALREADY_REVERSED"
    body = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert body["data"]["card"]["balance"] == 5000
    await ledger_ok()


async def test_lifecycle_freeze_lost_replace(client):
    m = await make_merchant(client)
    card = await make_card(client, m, load=3000)
    status = """mutation($i: CardIdInput!) { %s(input: $i) { card { status } errors { code } } }"""
    body = await gql(client, status % "cardFreeze", {"i": {"cardId": card["id"]}}, token=m.staff)
    assert body["data"]["cardFreeze"]["card"]["status"] == "FROZEN"
    refused = await pay(client, m, card["id"], 100)
    assert refused["errors"][0]["code"] == "CARD_FROZEN"
    body = await gql(client, status % "cardUnfreeze", {"i": {"cardId": card["id"]}}, token=m.staff)
    assert body["data"]["cardUnfreeze"]["card"]["status"] == "ACTIVE"
    body = await gql(
        client, status % "cardReportLost", {"i": {"cardId": card["id"]}}, token=m.staff
    )
    assert body["data"]["cardReportLost"]["card"]["status"] == "LOST"
    assert (await pay(client, m, card["id"], 100))["errors"][0]["code"] == "CARD_LOST"
    body = await gql(client, status % "cardUnfreeze", {"i": {"cardId": card["id"]}}, token=m.staff)
    assert body["data"]["cardUnfreeze"]["errors"][0]["code"] == "INVALID_CARD_STATE"
    replace = """mutation($i: CardReplaceInput!) { cardReplace(input: $i) {
      card { id status balance } errors { code } } }"""
    k = key()
    body = await gql(
        client, replace, {"i": {"cardId": card["id"], "idempotencyKey": k}}, token=m.staff
    )
    new = body["data"]["cardReplace"]["card"]
    assert new["balance"] == 3000 and new["status"] == "ACTIVE"
    again = await gql(
        client, replace, {"i": {"cardId": card["id"], "idempotencyKey": k}}, token=m.staff
    )
    assert again["data"]["cardReplace"]["card"]["id"] == new["id"]
    old = await gql(client, CARD, {"id": card["id"]}, token=m.staff)
    assert old["data"]["card"]["status"] == "REPLACED" and old["data"]["card"]["balance"] == 0
    assert (await pay(client, m, new["id"], 3000))["errors"] == []
    await ledger_ok()


async def test_rulebook_caps_and_real_name(client):
    m = await make_merchant(client)
    bearer = await make_product(client, m, "BEARER")
    card = await make_card(client, m, product_id=bearer, kind="BEARER", load=100_000)
    body = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": card["id"], "amount": 1, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["topUp"]["errors"][0]["code"] == "BALANCE_CAP_EXCEEDED"
    named = await make_card(client, m, load=500_000)
    assert named["balance"] == 500_000
    body = await gql(
        client,
        TOP_UP,
        {"i": {"cardId": named["id"], "amount": 1, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    assert body["data"]["topUp"]["errors"][0]["code"] == "BALANCE_CAP_EXCEEDED"
    other = await make_card(client, m, product_id=bearer, kind="BEARER")
    body = await gql(
        client,
        TOP_UP,
        {
            "i": {
                "cardId": other["id"],
                "amount": 1_000_000,
                "channel": "CASH",
                "idempotencyKey": key(),
            }
        },
        token=m.staff,
    )
    assert body["data"]["topUp"]["errors"][0]["code"] == "REAL_NAME_REQUIRED"
    await ledger_ok()


async def test_pin_threshold_and_lock(client):
    m = await make_merchant(client)
    product = await make_product(client, m, "NAMED", pinThreshold=5000)
    card = await make_card(client, m, product_id=product, load=50000)
    assert (await pay(client, m, card["id"], 5000))["errors"] == []
    assert (await pay(client, m, card["id"], 5001))["errors"][0]["code"] == "INVALID_PIN"
    set_pin = """mutation($i: CardSetPinInput!) { cardSetPin(input: $i) { card { hasPin } errors { code } } }"""
    body = await gql(client, set_pin, {"i": {"cardId": card["id"], "pin": "111111"}}, token=m.staff)
    assert body["data"]["cardSetPin"]["errors"][0]["code"] == "INVALID_INPUT"
    body = await gql(client, set_pin, {"i": {"cardId": card["id"], "pin": "274913"}}, token=m.staff)
    assert body["data"]["cardSetPin"]["card"]["hasPin"] is True
    assert (await pay(client, m, card["id"], 6000, pin="274913"))["errors"] == []
    codes = [
        (await pay(client, m, card["id"], 6000, pin="000001"))["errors"][0]["code"]
        for _ in range(5)
    ]
    assert codes == ["INVALID_PIN"] * 4 + ["PIN_LOCKED"]
    assert (await pay(client, m, card["id"], 6000, pin="274913"))["errors"][0][
        "code"
    ] == "PIN_LOCKED"


async def test_tenant_isolation_and_consumer_cards(client, sms):
    a = await make_merchant(client)
    b = await make_merchant(client, a.operator)
    phone = "136" + key()[2:10].translate(str.maketrans("abcdef", "123456"))
    card = await make_card(client, a, load=2000, holder_phone=phone)
    # Another merchant's staff cannot see or charge it.
    body = await gql(client, CARD, {"id": card["id"]}, token=b.staff)
    assert body["data"]["card"] is None
    result = await gql(
        client,
        """mutation($i: PayInput!) { pay(input: $i) { payment { id } errors { code } } }""",
        {
            "i": {
                "storeId": b.store_id,
                "amount": 100,
                "cardId": card["id"],
                "idempotencyKey": key(),
            }
        },
        token=b.staff,
    )
    assert result["data"]["pay"]["errors"][0]["code"] == "NOT_FOUND"
    # Staff of A cannot charge it at B's store.
    result = await gql(
        client,
        """mutation($i: PayInput!) { pay(input: $i) { payment { id } errors { code } } }""",
        {
            "i": {
                "storeId": b.store_id,
                "amount": 100,
                "cardId": card["id"],
                "idempotencyKey": key(),
            }
        },
        token=a.staff,
    )
    assert top_code(result) == "FORBIDDEN"
    # The holder logs in with the phone and sees the card; another consumer does not.
    holder = await consumer_token(client, sms, phone)
    body = await gql(client, "{ myCards { id balance } }", token=holder)
    assert body["data"]["myCards"] == [{"id": card["id"], "balance": 2000}]
    stranger = await consumer_token(client, sms)
    body = await gql(client, CARD, {"id": card["id"]}, token=stranger)
    assert body["data"]["card"] is None
    # The holder pays at the merchant's store with the card id.
    paid = await pay(client, a, card["id"], 500, token=holder)
    assert paid["errors"] == [] and paid["payment"]["card"]["balance"] == 1500


async def test_terminal_charges_by_uid_only_at_its_store(client):
    m = await make_merchant(client)
    await make_card(client, m, load=3000, card_uid="04:A2:2B:C1:9F:5E:80")
    pay_uid = (
        """mutation($i: PayInput!) { pay(input: $i) { payment { amount } errors { code } } }"""
    )
    body = await gql(
        client,
        pay_uid,
        {
            "i": {
                "storeId": m.store_id,
                "amount": 300,
                "cardUid": "04A22BC19F5E80",
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert body["data"]["pay"]["payment"]["amount"] == 300
    body = await gql(
        client,
        pay_uid,
        {
            "i": {
                "storeId": m.other_store_id,
                "amount": 300,
                "cardUid": "04A22BC19F5E80",
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert top_code(body) == "FORBIDDEN"
    body = await gql(
        client,
        pay_uid,
        {
            "i": {
                "storeId": m.store_id,
                "amount": 300,
                "paymentCode": "991234567890123456",
                "idempotencyKey": key(),
            }
        },
        terminal_key=m.terminal_key,
    )
    assert body["data"]["pay"]["errors"][0]["code"] == "CODE_INVALID"
