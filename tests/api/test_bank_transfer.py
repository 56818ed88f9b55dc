"""Top-up by bank transfer: paid into the merchant's escrow account, confirmed by its custodian."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta

from domain import clock
from tests.api.test_escrow import escrow_of, official, open_escrow
from tests.api.test_money import ledger_ok
from tests.helpers import CARD, consumer_token, gql, key, make_card, make_merchant

START = """mutation($i: TopUpInput!) { topUp(input: $i) {
  topUp { id status amount expiresAt
          payRequest { channel bankTransfer { custodian accountLast4 reference amount } } }
  errors { code field } } }"""
CONFIRM = """mutation($i: BankTransferConfirmInput!) { bankTransferConfirm(input: $i) {
  topUp { id status amount } errors { code field } } }"""


async def test_a_bank_transfer_is_credited_once_when_the_custodian_confirms_it(client, sms):
    m = await make_merchant(client)
    phone = "135" + f"{secrets.randbelow(10**8):08d}"
    consumer = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=1000, holder_phone=phone)
    request = {"cardId": card["id"], "amount": 200000, "channel": "BANK_TRANSFER"}

    no_account = await gql(
        client, START, {"i": {**request, "idempotencyKey": key()}}, token=consumer
    )
    assert no_account["data"]["topUp"]["errors"][0]["code"] == "CHANNEL_NOT_AVAILABLE"

    bank = f"存管行-{secrets.token_hex(3)}"
    custodian = await official(client, m.operator, "CUSTODIAN", bank, "110000")
    stranger = await official(client, m.operator, "CUSTODIAN", "别的银行", "110000")
    assert (await open_escrow(client, m, bank))["errors"] == []
    started = await gql(client, START, {"i": {**request, "idempotencyKey": key()}}, token=consumer)
    top = started["data"]["topUp"]["topUp"]
    assert top["status"] == "PENDING"
    assert top["payRequest"] == {
        "channel": "BANK_TRANSFER",
        "bankTransfer": {
            "custodian": bank,
            "accountLast4": "2233",
            "reference": top["id"],
            "amount": 200000,
        },
    }
    waits = datetime.fromisoformat(top["expiresAt"]) - clock.now()
    assert timedelta(days=2, hours=23) < waits <= timedelta(days=3)

    def confirmation(amount: int) -> dict:
        return {"i": {"topUpId": top["id"], "amount": amount, "bankReference": "CMB2026112300001"}}

    short = await gql(client, CONFIRM, confirmation(199999), token=custodian)
    assert short["data"]["bankTransferConfirm"]["errors"][0]["code"] == "AMOUNT_MISMATCH"
    foreign = await gql(client, CONFIRM, confirmation(200000), token=stranger)
    assert foreign["data"]["bankTransferConfirm"]["errors"][0]["code"] == "NOT_FOUND"
    held_before = (await escrow_of(client, custodian, m.merchant_id))["held"]

    answers = await asyncio.gather(
        *(gql(client, CONFIRM, confirmation(200000), token=custodian) for _ in range(5))
    )
    assert {a["data"]["bankTransferConfirm"]["topUp"]["status"] for a in answers} == {"SUCCEEDED"}
    balance = (await gql(client, CARD, {"id": card["id"]}, token=m.staff))["data"]["card"]
    assert balance["balance"] == 201000
    assert (await escrow_of(client, custodian, m.merchant_id))["held"] == held_before + 80000
    await ledger_ok()
