"""Earn-spend-refund sequences (seeded random programs through the API) and live points.

Three members of one programme (1 point per yuan, a one-day return window) pay, get refunds
(partial and whole, in any order), redeem rewards, receive manual credits, let pending points
mature and have the accrual job run, in random order. A plain model keeps what each payment
earned and how much of it was refunded; whenever the job has caught up, each member's points
must equal: earned - floor(earned * refunded / paid) per payment, + credits - redemptions, and
no balance may be negative, a member in debt may hold nothing, a wholly refunded payment may
keep no points, and `ledger verify` must hold. The exploit the debt closes (earn, spend the
points, refund the payment) is a likely path in every program.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect

from domain import clock
from tests.api.test_members import (
    ADJUST,
    REDEEM,
    accrue,
    consumer_with_card,
    ledger_ok,
    membership_at,
    new_consumer,
    ok,
    programme,
    reward,
)
from tests.helpers import REFUND, gql, key, make_merchant, pay


@dataclass
class Paid:
    id: str
    amount: int
    refunded: int = 0

    @property
    def earned(self) -> int:
        return self.amount // 100  # 1 point per yuan

    @property
    def kept(self) -> int:
        return self.earned - self.earned * self.refunded // self.amount


@dataclass
class Member:
    token: str
    card_id: str
    membership_id: str = ""
    payments: list[Paid] = field(default_factory=list)
    credits: int = 0
    redeemed: int = 0

    @property
    def expected(self) -> int:
        return sum(p.kept for p in self.payments) + self.credits - self.redeemed


async def mature() -> None:
    """The return window passes (and the clock comes back before the next API call)."""
    from domain.members import expiry

    clock.advance(timedelta(days=2))
    try:
        await expiry.mature_due()
    finally:
        clock.reset()


async def check(client: Any, m: Any, members: list[Member]) -> None:
    from domain.members.models import PointsAccrual

    await accrue()
    for member in members:
        me = await membership_at(client, member.token, m)
        member.membership_id = me["id"]
        available, pending, debt = me["points"], me["pendingPoints"], me["pointsDebt"]
        assert available >= 0 and pending >= 0 and debt >= 0, me
        if debt:
            assert available == 0 and pending == 0, me
        assert available + pending - debt == member.expected, (me, member)
        for paid in member.payments:
            accrual = await PointsAccrual.get(source_id=paid.id)
            assert accrual.points == paid.earned
            assert accrual.clawed_points == paid.earned - paid.kept
            if paid.refunded == paid.amount:
                assert accrual.clawed_points == accrual.points  # nothing kept


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_earn_spend_refund_sequences_keep_points_honest(app, client, sms, seed):
    rng = random.Random(seed)
    m = await make_merchant(client)
    await programme(client, m, pending_days=1, expiryMode="NONE")
    rewards = {cost: await reward(client, m, cost) for cost in (10, 35, 80)}
    members = []
    for _ in range(3):
        token, card = await consumer_with_card(app, client, sms, m, load=500_000)
        members.append(Member(token, card["id"]))
    ops = ["pay"] * 5 + ["refund"] * 4 + ["redeem"] * 4 + ["accrue", "mature", "mature", "credit"]
    for step in range(45):
        member = rng.choice(members)
        op = rng.choice(ops)
        if op == "pay":
            amount = rng.choice([rng.randint(1, 20_000), rng.randint(100, 3000), 10_000])
            result = await pay(client, m, member.card_id, amount)
            if not result["errors"]:
                member.payments.append(Paid(result["payment"]["id"], amount))
        elif op == "refund" and member.payments:
            paid = rng.choice(member.payments)
            left = paid.amount - paid.refunded
            if left:
                amount = left if rng.random() < 0.5 else rng.randint(1, left)
                body = await gql(
                    client,
                    REFUND,
                    {"i": {"paymentId": paid.id, "amount": amount, "idempotencyKey": key()}},
                    token=m.staff,
                )
                assert body["data"]["refund"]["errors"] == [], body
                paid.refunded += amount
        elif op == "redeem":
            await accrue()  # so that nothing changes the balance behind this step's back
            cost = rng.choice(list(rewards))
            before = (await membership_at(client, member.token, m))["points"]
            body = await gql(
                client,
                REDEEM,
                {"i": {"rewardId": rewards[cost], "idempotencyKey": key()}},
                token=member.token,
            )
            errors = body["data"]["redeem"]["errors"]
            if before >= cost:
                assert errors == [], (step, body)
                member.redeemed += cost
            else:
                assert [e["code"] for e in errors] == ["INSUFFICIENT_POINTS"], (step, body)
        elif op == "credit" and member.membership_id:
            points = rng.randint(1, 60)
            await ok(
                client,
                ADJUST,
                "pointsAdjust",
                {
                    "membershipId": member.membership_id,
                    "points": points,
                    "reason": "补偿",
                    "idempotencyKey": key(),
                },
                m.admin,
            )
            member.credits += points
        elif op == "mature":
            await mature()
        elif op == "accrue":
            await check(client, m, members)
        if step % 15 == 14:
            await ledger_ok()
    # Finally every payment is refunded whole: only credits minus redemptions may remain.
    for member in members:
        for paid in member.payments:
            if paid.refunded < paid.amount:
                body = await gql(
                    client,
                    REFUND,
                    {
                        "i": {
                            "paymentId": paid.id,
                            "amount": paid.amount - paid.refunded,
                            "idempotencyKey": key(),
                        }
                    },
                    token=m.staff,
                )
                assert body["data"]["refund"]["errors"] == [], body
                paid.refunded = paid.amount
    await mature()
    await check(client, m, members)
    for member in members:
        assert member.expected == member.credits - member.redeemed
    await ledger_ok()


# --- live points ---------------------------------------------------------------------------------

SUB = """subscription($id: ID!) { pointsChanged(membershipId: $id) {
  membershipId points pendingPoints pointsDebt delta reason transactionId } }"""


async def subscribe(server_url: str, token: str, membership_id: str) -> Any:
    ws = await connect(f"ws://{server_url}/graphql", subprotocols=["graphql-transport-ws"])
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack", ack
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUB, "variables": {"id": membership_id}},
            }
        )
    )
    await asyncio.sleep(0.3)  # let the server subscribe before points move
    return ws


async def test_points_changed_reaches_the_member_only(app, client, sms, server_url):
    m = await make_merchant(client)
    await programme(client, m)
    token, card = await consumer_with_card(app, client, sms, m)
    await pay(client, m, card["id"], 2_000)
    await accrue()
    me = await membership_at(client, token, m)
    ws = await subscribe(server_url, token, me["id"])
    try:
        await pay(client, m, card["id"], 3_000)
        await accrue()
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        data = event["payload"]["data"]["pointsChanged"]
        assert data == {
            "membershipId": me["id"],
            "points": 50,
            "pendingPoints": 0,
            "pointsDebt": 0,
            "delta": 30,
            "reason": "EARN",
            "transactionId": data["transactionId"],
        }
    finally:
        await ws.close()
    # Not another consumer, and not even the merchant's staff.
    for other in (await new_consumer(app, sms), m.staff):
        ws = await subscribe(server_url, other, me["id"])
        try:
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            errors = event["payload"] if event["type"] == "error" else event["payload"]["errors"]
            assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], event
        finally:
            await ws.close()
