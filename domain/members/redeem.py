"""积分兑换: redeem a catalogue item for points.

One transaction: the idempotency key, the membership lock (one member's redemptions queue, so
the per-member limit is counted exactly), the points (soonest-expiring lots first, a conditional
debit), the stock (`UPDATE ... SET stock = stock - 1 WHERE stock > 0`: concurrent redeemers of
the last items queue on the row and the losers get OUT_OF_STOCK, never an oversold item) and
the redemption row. Any failure rolls all of it back and leaves the key free.
"""

from __future__ import annotations

from domain import clock
from domain.actor import Actor, Role
from domain.db import transaction
from domain.errors import DomainError, forbidden
from domain.ids import has_prefix, new_id
from domain.ledger import service as ledger
from domain.members import errors, points
from domain.members.models import Membership, Redemption, Reward
from domain.sql import execute


async def get_reward(reward_id: str) -> Reward:
    reward = await Reward.get_or_none(id=reward_id) if has_prefix(reward_id, "rwd") else None
    if reward is None:
        raise errors.reward_not_found()
    return reward


def _check_open(reward: Reward) -> None:
    now = clock.now()
    if (
        not reward.active
        or (reward.valid_from is not None and now < reward.valid_from)
        or (reward.valid_until is not None and now >= reward.valid_until)
    ):
        raise errors.reward_unavailable()


async def redeem(actor: Actor, *, reward_id: str, idempotency_key: str) -> Redemption:
    if actor.role != Role.CONSUMER:
        raise forbidden("Members redeem their own points")
    reward = await get_reward(reward_id)
    request = {"rewardId": reward_id}
    redemption_id = new_id("rdm")
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="redeem",
            request=request,
            result_id=redemption_id,
        )
        if replay is not None:
            return await Redemption.filter(id=replay).using_db(conn).get()
        _check_open(reward)
        found = (
            await Membership.filter(merchant_id=reward.merchant_id, user_id=actor.id)
            .using_db(conn)
            .first()
        )
        if found is None:
            raise errors.not_a_member()
        membership = await points.lock_membership(conn, found.id)
        if reward.per_member_limit is not None:
            had = (
                await Redemption.filter(reward_id=reward.id, membership_id=membership.id)
                .using_db(conn)
                .count()
            )
            if had >= reward.per_member_limit:
                raise errors.limit_reached()
        try:
            transfer_id = await points.spend(
                conn,
                membership,
                points=reward.points_cost,
                to_kind=points.REDEEMED,
                transfer_kind="POINTS_REDEEM",
                reference=redemption_id,
            )
        except DomainError as exc:
            if exc.code == "INSUFFICIENT_FUNDS":  # the conditional debit refused
                raise errors.insufficient_points() from exc
            raise
        taken = await execute(
            conn,
            "UPDATE rewards SET stock = stock - 1, redeemed_count = redeemed_count + 1"
            " WHERE id = $1 AND stock > 0",
            reward.id,
        )
        if not taken:
            taken = await execute(
                conn,
                "UPDATE rewards SET redeemed_count = redeemed_count + 1"
                " WHERE id = $1 AND stock IS NULL",
                reward.id,
            )
        if not taken:
            raise errors.out_of_stock()
        redemption = await Redemption.create(
            using_db=conn,
            id=redemption_id,
            reward_id=reward.id,
            membership_id=membership.id,
            merchant_id=reward.merchant_id,
            points=reward.points_cost,
            status="COMPLETED",
            transfer_id=transfer_id,
            created_at=clock.now(),
        )
        await points.record(
            conn,
            membership.id,
            kind="REDEEM",
            points=-reward.points_cost,
            reference=redemption_id,
            transfer_id=transfer_id,
            detail={"rewardId": reward.id, "reward": reward.name},
        )
    return redemption
