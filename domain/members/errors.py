"""Error codes of members, tiers, points and rewards."""

from __future__ import annotations

from domain.errors import DomainError


def programme_not_found(field: str = "merchantId") -> DomainError:
    return DomainError(
        "NOT_FOUND", "该商户没有会员计划", "This merchant runs no membership programme", field
    )


def membership_not_found(field: str = "membershipId") -> DomainError:
    return DomainError("NOT_FOUND", "会员不存在", "Membership not found", field)


def tier_not_found(field: str = "tierId") -> DomainError:
    return DomainError("NOT_FOUND", "会员等级不存在", "Tier not found", field)


def rule_not_found(field: str = "ruleId") -> DomainError:
    return DomainError("NOT_FOUND", "积分规则不存在", "Points rule not found", field)


def reward_not_found(field: str = "rewardId") -> DomainError:
    return DomainError("NOT_FOUND", "兑换商品不存在", "Reward not found", field)


def not_a_member() -> DomainError:
    return DomainError(
        "NOT_A_MEMBER", "您还不是该商户的会员", "You are not a member of this programme", "rewardId"
    )


def insufficient_points(field: str = "points") -> DomainError:
    return DomainError("INSUFFICIENT_POINTS", "积分不足", "Not enough points", field)


def out_of_stock() -> DomainError:
    return DomainError("OUT_OF_STOCK", "已兑完", "Out of stock", "rewardId")


def limit_reached() -> DomainError:
    return DomainError(
        "LIMIT_REACHED", "已达每人兑换上限", "You reached this reward's limit", "rewardId"
    )


def reward_unavailable() -> DomainError:
    return DomainError(
        "REWARD_UNAVAILABLE", "该商品当前不可兑换", "This reward cannot be redeemed now", "rewardId"
    )


def rank_taken() -> DomainError:
    return DomainError(
        "INVALID_INPUT", "该等级序号已存在", "A tier with this rank already exists", "rank"
    )
