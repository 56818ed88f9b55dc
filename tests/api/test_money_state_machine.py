"""Money operations as a Hypothesis state machine driving the real GraphQL API.

The world: one merchant and three products (NAMED with a top-up bonus, BEARER, and a NAMED
bonusFirst product with two bonus rules). Rules issue cards (with or without an initial load),
top up in cash, pay, refund in part, void, freeze, unfreeze, report lost and replace, hold
money (预授权), capture part or all of a hold into a payment, and release a hold; two more
rules retry an earlier idempotency key, with the same request (must replay: same result id,
no ledger transfer) or with a different one (must be IDEMPOTENCY_KEY_REUSED). A plain-Python
model keeps each card's status, principal and bonus and each payment's refunds; after every
step the API must agree with it (one aliased query for all cards and payments), and the ledger
and payment invariants (`yikatong ledger verify`) are checked every fifth step and at teardown.

How it runs (asyncio vs a synchronous state machine): the app, its Tortoise connections and
the `client` live on pytest-asyncio's session event loop. The test function itself is
synchronous, so while it runs that loop exists but is not running; each API call is executed
with `loop.run_until_complete(...)` on that very loop (obtained by the `session_loop` fixture
below). pytest-asyncio copies context variables set by async session fixtures into the main
thread's context, so the coroutines see the same app state as any async test. Hypothesis
therefore drives an ordinary `RuleBasedStateMachine` through `run_state_machine_as_test`, with
generation, bundles, invariants and shrinking all working as usual. Background tasks of the
app (the outbox relay) simply advance whenever a call runs the loop. The merchant and products
are made once per session (logins hash passwords, which is slow); each example starts a fresh
model with fresh cards, while the ledger checks cover the whole database.

Bugs this machine found, now fixed, each kept as a regression test below replaying the minimal
program Hypothesis shrank it to:

1. A refund or void of a payment made with a card that has since been replaced credited the
   REPLACED card, where the money was stranded; it now goes to the replacement.
2. Retrying a committed cash top-up after the card was frozen, reported lost or replaced was
   refused instead of replayed; the key is now looked up before the card checks.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.helpers import (
    CARD_ISSUE,
    PAY,
    REFUND,
    TOP_UP,
    MerchantSetup,
    gql,
    key,
    make_merchant,
    make_product,
)

VOID = """mutation($i: PaymentVoidInput!) { paymentVoid(input: $i) {
  refund { id amount principalAmount bonusAmount kind payment { id refundedAmount status } }
  errors { code field message } } }"""
REPLACE = """mutation($i: CardReplaceInput!) { cardReplace(input: $i) {
  card { id status balance principalBalance bonusBalance } errors { code field message } } }"""
HOLD = """mutation($i: CardHoldInput!) { cardHold(input: $i) {
  hold { id amount status capturedAmount card { id balance } } errors { code field message } } }"""
CAPTURE = """mutation($i: HoldCaptureInput!) { holdCapture(input: $i) {
  hold { id amount status capturedAmount paymentId } errors { code field message } } }"""
RELEASE = """mutation($i: HoldIdInput!) { holdRelease(input: $i) {
  hold { id status } errors { code field message } } }"""
STATUS = """mutation($i: CardIdInput!) { %s(input: $i) {
  card { id status } errors { code field message } } }"""

# op -> (document, field of the payload holding the result)
DOCUMENTS = {
    "cardIssue": (CARD_ISSUE, "card"),
    "topUp": (TOP_UP, "topUp"),
    "pay": (PAY, "payment"),
    "refund": (REFUND, "refund"),
    "paymentVoid": (VOID, "refund"),
    "cardReplace": (REPLACE, "card"),
    "cardHold": (HOLD, "hold"),
    "holdCapture": (CAPTURE, "hold"),
    "holdRelease": (RELEASE, "hold"),
}

CAPS = {"NAMED": 500_000, "BEARER": 100_000}  # principal caps of the national rulebook
STATUS_ERROR = {"FROZEN": "CARD_FROZEN", "LOST": "CARD_LOST", "REPLACED": "CARD_NOT_ACTIVE"}

AMOUNT = st.integers(1, 20_000)
# Mostly small loads; a few big ones so that the balance caps are reached now and then.
LOAD = st.one_of(st.none(), AMOUNT, st.sampled_from([60_000, 99_000, 100_001, 499_000, 500_001]))
# Spending: any small amount, or one relative to the card's balances so that payments often
# take from both sub-balances (and sometimes a fen more than there is).
SPEND = AMOUNT | st.sampled_from(["all", "all+1", "principal+1", "bonus+1"])


class StrandedMoney(AssertionError):
    """Money on a card that can never be used again (known bug 1)."""


class ReplayRefused(AssertionError):
    """A retry of a committed request with its key was not replayed (known bug 2)."""


# --- the model -------------------------------------------------------------------------------


class Short:
    """Hypothesis prints drawn values in the failing program: keep them to one line."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


@dataclass(frozen=True)
class Product:
    name: str
    id: str
    kind: str
    bonus_first: bool
    bonus_rules: tuple[tuple[int, int], ...]  # (minimum top-up, bonus)

    def bonus_for(self, amount: int) -> int:
        return max((bonus for least, bonus in self.bonus_rules if amount >= least), default=0)


@dataclass(eq=False, repr=False)
class CardModel(Short):
    id: str
    product: Product
    status: str = "ACTIVE"
    principal: int = 0
    bonus: int = 0
    replaced_by: CardModel | None = None

    def __repr__(self) -> str:
        return f"Card({self.product.name} {self.status} {self.principal}+{self.bonus})"

    def current(self) -> CardModel:
        """The card holding this card's balance today (补卡 passes it on)."""
        card = self
        while card.status == "REPLACED" and card.replaced_by is not None:
            card = card.replaced_by
        return card


@dataclass(eq=False, repr=False)
class PaymentModel(Short):
    id: str
    card: CardModel
    amount: int
    principal: int
    bonus: int
    day: date
    refunded: int = 0
    refunded_principal: int = 0
    refunded_bonus: int = 0
    voided: bool = False

    @property
    def status(self) -> str:
        if self.voided:
            return "VOIDED"
        if self.refunded == 0:
            return "SUCCEEDED"
        return "REFUNDED" if self.refunded == self.amount else "PARTIALLY_REFUNDED"

    def refund_split(self, amount: int) -> tuple[int, int]:
        """(principal, bonus) back: in the payment's proportion, exact on the last refund."""
        left_principal = self.principal - self.refunded_principal
        left_bonus = self.bonus - self.refunded_bonus
        if self.refunded + amount == self.amount:
            return left_principal, left_bonus
        bonus = min(left_bonus, amount * self.bonus // self.amount)
        principal = amount - bonus
        if principal > left_principal:
            principal, bonus = left_principal, amount - left_principal
        return principal, bonus

    def __repr__(self) -> str:
        return (
            f"Payment({self.principal}+{self.bonus} refunded {self.refunded} {self.status}"
            f" on {self.card!r})"
        )


@dataclass(eq=False, repr=False)
class HoldModel(Short):
    """预授权: money set aside from a card, captured into a payment or released."""

    id: str
    card: CardModel
    amount: int
    principal: int
    bonus: int
    status: str = "PENDING"
    captured: int = 0

    def __repr__(self) -> str:
        return f"Hold({self.principal}+{self.bonus} {self.status} on {self.card!r})"


@dataclass(eq=False, repr=False)
class Record(Short):
    """A succeeded idempotent request: what a client would retry."""

    op: str
    request: dict[str, Any]
    result_id: str
    card: CardModel | None = None  # for topUp: the card it credited

    def __repr__(self) -> str:
        shown = {
            k: v
            for k, v in self.request.items()
            if k not in ("idempotencyKey", "storeId", "holderPhone", "channel")
        }
        for name in ("cardId", "paymentId", "productId"):
            if name in shown:
                shown[name] = "…" + shown[name][-4:]
        return f"Record({self.op} {shown})"


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    client: Any
    merchant: MerchantSetup
    products: dict[str, Product]

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)


# --- the machine -----------------------------------------------------------------------------


def eval_spend(card: CardModel, spend: str) -> int:
    base, _, extra = spend.partition("+")
    total = {"all": card.principal + card.bonus, "principal": card.principal, "bonus": card.bonus}
    return total[base] + int(extra or 0)


class MoneyMachine(RuleBasedStateMachine):
    cards = Bundle("cards")
    payments = Bundle("payments")
    holds = Bundle("holds")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.all_cards: list[CardModel] = []
        self.all_payments: list[PaymentModel] = []
        self.all_holds: list[HoldModel] = []
        self.records: list[Record] = []
        self.steps = 0

    # -- plumbing

    def call(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        document = DOCUMENTS[op][0] if op in DOCUMENTS else STATUS % op
        body = self.world.run(
            gql(self.world.client, document, {"i": request}, token=self.world.merchant.staff)
        )
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"][op]
        return payload

    @staticmethod
    def expect_error(payload: dict[str, Any], *codes: str) -> None:
        got = [e["code"] for e in payload["errors"]]
        assert len(got) == 1 and got[0] in codes, f"expected one of {codes}, got {payload}"

    @staticmethod
    def expect_ok(payload: dict[str, Any], op: str) -> dict[str, Any]:
        assert payload["errors"] == [], payload
        result: dict[str, Any] = payload[DOCUMENTS[op][1]]
        return result

    def ledger_ok(self) -> None:
        from domain.ledger.verify import verify
        from domain.payments.verify import verify as verify_payments

        async def check() -> Any:
            report = await verify()
            await verify_payments(report)
            return report

        report = self.world.run(check())
        assert report.ok, report.problems

    def transfer_count(self) -> int:
        from domain.db import connection
        from domain.sql import fetch

        rows = self.world.run(fetch(connection(), "SELECT COUNT(*) AS n FROM ledger_transfers"))
        return int(rows[0]["n"])

    # -- issue and top-up

    @rule(target=cards, product=st.sampled_from(["named", "bearer", "bonus_first"]), load=LOAD)
    def issue_card(self, product: str, load: int | None) -> Any:
        p = self.world.products[product]
        phone = "137" + f"{secrets.randbelow(10**8):08d}" if p.kind == "NAMED" else None
        request = {
            "productId": p.id,
            "holderPhone": phone,
            "initialLoad": load,
            "idempotencyKey": key(),
        }
        payload = self.call("cardIssue", request)
        if load is not None and load > CAPS[p.kind]:
            self.expect_error(payload, "BALANCE_CAP_EXCEEDED")
            return multiple()
        got = self.expect_ok(payload, "cardIssue")
        card = CardModel(got["id"], p, principal=load or 0, bonus=p.bonus_for(load or 0))
        assert (got["status"], got["kind"]) == ("ACTIVE", p.kind), got
        assert (got["principalBalance"], got["bonusBalance"]) == (card.principal, card.bonus)
        self.all_cards.append(card)
        self.records.append(Record("cardIssue", request, card.id))
        return card

    @rule(card=cards, amount=AMOUNT)
    def top_up(self, card: CardModel, amount: int) -> None:
        request = {"cardId": card.id, "amount": amount, "channel": "CASH", "idempotencyKey": key()}
        payload = self.call("topUp", request)
        if card.status != "ACTIVE":
            self.expect_error(payload, STATUS_ERROR[card.status])
            return
        if card.principal + amount > CAPS[card.product.kind]:
            self.expect_error(payload, "BALANCE_CAP_EXCEEDED")
            return
        got = self.expect_ok(payload, "topUp")
        bonus = card.product.bonus_for(amount)
        assert (got["status"], got["amount"], got["bonus"]) == ("SUCCEEDED", amount, bonus), got
        card.principal += amount
        card.bonus += bonus
        assert got["card"]["balance"] == card.principal + card.bonus, got
        self.records.append(Record("topUp", request, got["id"], card))

    # -- pay, refund, void

    @rule(target=payments, card=cards, spend=SPEND)
    def pay(self, card: CardModel, spend: int | str) -> Any:
        amount = spend if isinstance(spend, int) else max(1, eval_spend(card, spend))
        request = {
            "storeId": self.world.merchant.store_id,
            "cardId": card.id,
            "amount": amount,
            "idempotencyKey": key(),
        }
        payload = self.call("pay", request)
        if card.status != "ACTIVE":
            self.expect_error(payload, STATUS_ERROR[card.status])
            return multiple()
        if amount > card.principal + card.bonus:
            self.expect_error(payload, "INSUFFICIENT_FUNDS")
            return multiple()
        if card.product.bonus_first:
            bonus = min(card.bonus, amount)
            principal = amount - bonus
        else:
            principal = min(card.principal, amount)
            bonus = amount - principal
        got = self.expect_ok(payload, "pay")
        assert (got["amount"], got["principalAmount"], got["bonusAmount"]) == (
            amount,
            principal,
            bonus,
        ), got
        assert (got["refundedAmount"], got["status"]) == (0, "SUCCEEDED"), got
        card.principal -= principal
        card.bonus -= bonus
        assert got["card"]["balance"] == card.principal + card.bonus, got
        payment = PaymentModel(got["id"], card, amount, principal, bonus, datetime.now(UTC).date())
        self.all_payments.append(payment)
        self.records.append(Record("pay", request, payment.id))
        return payment

    # -- two-phase: hold, capture, release

    @staticmethod
    def split(card: CardModel, amount: int, principal: int, bonus: int) -> tuple[int, int]:
        """(principal, bonus) that `amount` takes from these, in the product's order."""
        if card.product.bonus_first:
            from_bonus = min(bonus, amount)
            return amount - from_bonus, from_bonus
        from_principal = min(principal, amount)
        return from_principal, amount - from_principal

    @rule(target=holds, card=cards, spend=SPEND)
    def hold(self, card: CardModel, spend: int | str) -> Any:
        amount = spend if isinstance(spend, int) else max(1, eval_spend(card, spend))
        request = {
            "storeId": self.world.merchant.store_id,
            "cardId": card.id,
            "amount": amount,
            "idempotencyKey": key(),
        }
        payload = self.call("cardHold", request)
        if card.status != "ACTIVE":
            self.expect_error(payload, STATUS_ERROR[card.status])
            return multiple()
        if amount > card.principal + card.bonus:
            self.expect_error(payload, "INSUFFICIENT_FUNDS")
            return multiple()
        principal, bonus = self.split(card, amount, card.principal, card.bonus)
        got = self.expect_ok(payload, "cardHold")
        assert (got["amount"], got["status"], got["capturedAmount"]) == (amount, "PENDING", 0)
        card.principal -= principal
        card.bonus -= bonus
        assert got["card"]["balance"] == card.principal + card.bonus, got
        held = HoldModel(got["id"], card, amount, principal, bonus)
        self.all_holds.append(held)
        self.records.append(Record("cardHold", request, held.id))
        return held

    @rule(target=payments, held=holds, data=st.data())
    def capture(self, held: HoldModel, data: st.DataObject) -> Any:
        amount = data.draw(st.integers(1, held.amount) | st.just(held.amount + 1), label="amount")
        request = {"holdId": held.id, "amount": amount, "idempotencyKey": key()}
        payload = self.call("holdCapture", request)
        if held.status != "PENDING":
            self.expect_error(payload, "HOLD_NOT_PENDING")
            return multiple()
        if amount > held.amount:
            self.expect_error(payload, "CAPTURE_EXCEEDS_HOLD")
            return multiple()
        took_principal, took_bonus = self.split(held.card, amount, held.principal, held.bonus)
        got = self.expect_ok(payload, "holdCapture")
        assert (got["status"], got["capturedAmount"]) == ("CAPTURED", amount), got
        # The rest goes back to the card that holds the balance now.
        holder = held.card.current()
        holder.principal += held.principal - took_principal
        holder.bonus += held.bonus - took_bonus
        held.status, held.captured = "CAPTURED", amount
        payment = PaymentModel(
            got["paymentId"],
            held.card,
            amount,
            took_principal,
            took_bonus,
            datetime.now(UTC).date(),
        )
        self.all_payments.append(payment)
        self.records.append(Record("holdCapture", request, held.id))
        return payment

    @rule(held=holds)
    def release(self, held: HoldModel) -> None:
        payload = self.call("holdRelease", {"holdId": held.id})
        if held.status == "CAPTURED":
            self.expect_error(payload, "HOLD_NOT_PENDING")
            return
        got = self.expect_ok(payload, "holdRelease")
        assert got["status"] == "RELEASED", got
        if held.status == "PENDING":
            holder = held.card.current()
            holder.principal += held.principal
            holder.bonus += held.bonus
            held.status = "RELEASED"

    @rule(payment=payments, data=st.data())
    def refund(self, payment: PaymentModel, data: st.DataObject) -> None:
        left = payment.amount - payment.refunded
        # Any part of the payment (often more than is left), or exactly what is left.
        amount = data.draw(st.integers(1, payment.amount) | st.just(max(left, 1)), label="amount")
        self.refund_amount(payment, amount)

    def refund_amount(self, payment: PaymentModel, amount: int) -> None:
        request = {"paymentId": payment.id, "amount": amount, "idempotencyKey": key()}
        payload = self.call("refund", request)
        if amount > payment.amount - payment.refunded:
            self.expect_error(payload, "REFUND_EXCEEDS_PAYMENT")
            return
        principal, bonus = payment.refund_split(amount)
        got = self.expect_ok(payload, "refund")
        assert (got["amount"], got["principalAmount"], got["bonusAmount"], got["kind"]) == (
            amount,
            principal,
            bonus,
            "REFUND",
        ), got
        self.give_back(payment, amount, principal, bonus)
        assert got["payment"]["refundedAmount"] == payment.refunded, got
        assert got["payment"]["status"] == payment.status, got
        self.records.append(Record("refund", request, got["id"]))

    @rule(payment=payments)
    def void(self, payment: PaymentModel) -> None:
        request = {"paymentId": payment.id, "idempotencyKey": key()}
        payload = self.call("paymentVoid", request)
        if payment.refunded:
            self.expect_error(payload, "ALREADY_REVERSED")
            return
        if payment.day != datetime.now(UTC).date():  # the run crossed midnight (UTC)
            self.expect_error(payload, "VOID_WINDOW_CLOSED")
            return
        got = self.expect_ok(payload, "paymentVoid")
        assert (got["amount"], got["principalAmount"], got["bonusAmount"], got["kind"]) == (
            payment.amount,
            payment.principal,
            payment.bonus,
            "VOID",
        ), got
        self.give_back(payment, payment.amount, payment.principal, payment.bonus)
        payment.voided = True
        assert got["payment"]["status"] == "VOIDED", got
        self.records.append(Record("paymentVoid", request, got["id"]))

    @staticmethod
    def give_back(payment: PaymentModel, amount: int, principal: int, bonus: int) -> None:
        payment.refunded += amount
        payment.refunded_principal += principal
        payment.refunded_bonus += bonus
        # Back to the card that holds the balance now: the paying card, or its replacement.
        holder = payment.card.current()
        holder.principal += principal
        holder.bonus += bonus

    # -- lifecycle

    def transition(
        self, card: CardModel, mutation: str, new: str, allowed: tuple[str, ...]
    ) -> None:
        payload = self.call(mutation, {"cardId": card.id})
        if card.status not in allowed:
            self.expect_error(payload, "INVALID_CARD_STATE")
            return
        assert payload["errors"] == [] and payload["card"]["status"] == new, payload
        card.status = new

    @rule(card=cards)
    def freeze(self, card: CardModel) -> None:
        self.transition(card, "cardFreeze", "FROZEN", ("ACTIVE",))

    @rule(card=cards)
    def unfreeze(self, card: CardModel) -> None:
        self.transition(card, "cardUnfreeze", "ACTIVE", ("FROZEN",))

    @rule(card=cards)
    def report_lost(self, card: CardModel) -> None:
        self.transition(card, "cardReportLost", "LOST", ("ACTIVE", "FROZEN"))

    @rule(target=cards, card=cards)
    def replace(self, card: CardModel) -> Any:
        request = {"cardId": card.id, "idempotencyKey": key()}
        payload = self.call("cardReplace", request)
        if card.status not in ("ACTIVE", "FROZEN", "LOST"):
            self.expect_error(payload, "INVALID_CARD_STATE")
            return multiple()
        got = self.expect_ok(payload, "cardReplace")
        new = CardModel(got["id"], card.product, principal=card.principal, bonus=card.bonus)
        assert got["status"] == "ACTIVE", got
        assert (got["principalBalance"], got["bonusBalance"]) == (new.principal, new.bonus), got
        card.status, card.principal, card.bonus = "REPLACED", 0, 0
        card.replaced_by = new
        self.all_cards.append(new)
        self.records.append(Record("cardReplace", request, new.id))
        return new

    # -- retries of an idempotency key

    def replayable(self) -> list[Record]:
        return list(self.records)

    @precondition(lambda self: self.replayable())
    @rule(data=st.data())
    def retry_same_request(self, data: st.DataObject) -> None:
        self.retry_same(data.draw(st.sampled_from(self.replayable()), label="retry"))

    def retry_same(self, record: Record) -> None:
        """A client retry: the first result again, and no money moves."""
        transfers = self.transfer_count()
        payload = self.call(record.op, record.request)
        if payload["errors"]:
            raise ReplayRefused(f"{record} was not replayed: {payload['errors']}")
        assert payload[DOCUMENTS[record.op][1]]["id"] == record.result_id, (record, payload)
        assert self.transfer_count() == transfers, "a replay posted a ledger transfer"

    @precondition(lambda self: self.records)
    @rule(data=st.data())
    def retry_different_request(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.records), label="reuse")
        op, request = record.op, dict(record.request)
        accepted = ["IDEMPOTENCY_KEY_REUSED"]
        if op == "cardIssue":
            request["initialLoad"] = (request["initialLoad"] or 0) + 1
        elif op in ("topUp", "pay", "cardHold", "holdCapture"):
            request["amount"] += 1
            if op == "topUp" and record.card is not None and record.card.status != "ACTIVE":
                # topUp checks the card before the key: either refusal is acceptable here.
                accepted.append(STATUS_ERROR[record.card.status])
        elif op in ("refund", "paymentVoid"):
            how = data.draw(st.sampled_from(["reason", "other operation"]), label="change")
            if how == "reason":
                request["reason"] = "changed"
            elif op == "refund":
                op = "paymentVoid"
                del request["amount"]
            else:
                op, request["amount"] = "refund", 1
        elif op == "cardReplace":
            request["cardUid"] = "04" + secrets.token_hex(6).upper()
        transfers = self.transfer_count()
        self.expect_error(self.call(op, request), *accepted)
        assert self.transfer_count() == transfers, "a refused request posted a ledger transfer"

    # -- checks

    @invariant()
    def api_agrees_with_model(self) -> None:
        self.steps += 1
        if self.all_cards:
            self.compare_with_api()
        if self.steps % 5 == 0:
            self.ledger_ok()

    @invariant()
    def replaced_cards_hold_nothing(self) -> None:
        for card in self.all_cards:
            if card.status == "REPLACED" and (card.principal or card.bonus):
                raise StrandedMoney(f"{card} was replaced but has money again")

    def compare_with_api(self) -> None:
        cards, payments, holds = self.all_cards, self.all_payments, self.all_holds
        params = [f"$c{i}: ID!" for i in range(len(cards))]
        params += [f"$p{i}: ID!" for i in range(len(payments))]
        params += [f"$h{i}: ID!" for i in range(len(holds))]
        fields = [
            f"c{i}: card(id: $c{i}) {{ id status balance principalBalance bonusBalance }}"
            for i in range(len(cards))
        ]
        fields += [
            f"p{i}: payment(id: $p{i}) {{ id amount refundedAmount status }}"
            for i in range(len(payments))
        ]
        fields += [
            f"h{i}: hold(id: $h{i}) {{ id status capturedAmount }}" for i in range(len(holds))
        ]
        variables = {f"c{i}": c.id for i, c in enumerate(cards)}
        variables |= {f"p{i}": p.id for i, p in enumerate(payments)}
        variables |= {f"h{i}": h.id for i, h in enumerate(holds)}
        query = f"query({', '.join(params)}) {{ {' '.join(fields)} }}"
        body = self.world.run(
            gql(self.world.client, query, variables, token=self.world.merchant.staff)
        )
        assert "errors" not in body, body
        for i, card in enumerate(cards):
            want = {
                "id": card.id,
                "status": card.status,
                "balance": card.principal + card.bonus,
                "principalBalance": card.principal,
                "bonusBalance": card.bonus,
            }
            assert body["data"][f"c{i}"] == want, (card, body["data"][f"c{i}"])
        for i, payment in enumerate(payments):
            want = {
                "id": payment.id,
                "amount": payment.amount,
                "refundedAmount": payment.refunded,
                "status": payment.status,
            }
            assert body["data"][f"p{i}"] == want, (payment, body["data"][f"p{i}"])
        for i, held in enumerate(holds):
            want = {"id": held.id, "status": held.status, "capturedAmount": held.captured}
            assert body["data"][f"h{i}"] == want, (held, body["data"][f"h{i}"])

    def check_all(self) -> None:
        """The invariants and teardown, for programs replayed by hand."""
        self.api_agrees_with_model()
        self.replaced_cards_hold_nothing()
        self.teardown()

    def teardown(self) -> None:
        self.ledger_ok()


# --- running it on the session's event loop ------------------------------------------------


@pytest.fixture(scope="session")
async def session_loop(client: Any) -> asyncio.AbstractEventLoop:
    """The loop the app and `client` live on (not running while a sync test runs)."""
    return asyncio.get_running_loop()


@pytest.fixture(scope="session")
def world(session_loop: asyncio.AbstractEventLoop, client: Any) -> World:
    async def build() -> World:
        m = await make_merchant(client)
        specs = {
            "named": ("NAMED", False, ((10_000, 1_500),)),
            "bearer": ("BEARER", False, ()),
            "bonus_first": ("NAMED", True, ((5_000, 600), (15_000, 2_500))),
        }
        products = {}
        for name, (kind, bonus_first, rules) in specs.items():
            product_id = await make_product(
                client,
                m,
                kind,
                bonusFirst=bonus_first,
                topUpBonusRules=[{"minAmount": a, "bonus": b} for a, b in rules],
            )
            products[name] = Product(name, product_id, kind, bonus_first, rules)
        return World(session_loop, client, m, products)

    return session_loop.run_until_complete(build())


def test_money_state_machine(world: World) -> None:
    run_state_machine_as_test(
        lambda: MoneyMachine(world),
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_refund_after_replacement_reaches_the_new_card(world: World) -> None:
    machine = MoneyMachine(world)
    card = machine.issue_card(product="named", load=1)
    payment = machine.pay(card=card, spend=1)
    machine.replace(card=card)
    machine.void(payment=payment)
    machine.check_all()


def test_top_up_retry_after_freeze_replays(world: World) -> None:
    machine = MoneyMachine(world)
    card = machine.issue_card(product="named", load=None)
    machine.top_up(card=card, amount=1)
    machine.freeze(card=card)
    machine.retry_same(machine.records[-1])
    machine.check_all()
