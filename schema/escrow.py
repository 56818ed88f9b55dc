"""Escrow custody (资金存管): what a merchant must hold at its custodian bank, and what it holds."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.errors import DomainError
from domain.escrow.models import EscrowAccount as EscrowAccountModel
from domain.merchants.models import Merchant
from resolvers import escrow as resolve
from schema.errors import UserError, mutate
from schema.permissions import allow
from schema.scalars import Fen

R = Role


@strawberry.enum(description="RATIO: a share of the prepaid balance; FULL_CUSTODY: all of it.")
class EscrowPolicy(Enum):
    RATIO = "RATIO"
    FULL_CUSTODY = "FULL_CUSTODY"


@strawberry.type(description="A day's check of required against held escrow.")
class EscrowCheck:
    day: str
    outstanding: Fen
    required: Fen
    held: Fen
    short: bool


@strawberry.type(description="A risk warning: a merchant's escrow found short by a daily check.")
class EscrowShortfall:
    merchant_id: strawberry.ID
    day: str
    outstanding: Fen
    required: Fen
    held: Fen


@strawberry.type(description="A transfer that moved escrow; positive amounts went into it.")
class EscrowMovement:
    transaction_id: strawberry.ID
    kind: str
    amount: Fen
    at: datetime


@strawberry.type(description="存管账户: a merchant's escrow position under its effective policy.")
class EscrowAccount:
    merchant_id: strawberry.ID
    merchant_name: str
    custodian: str | None = strawberry.field(description="Null until an account is opened.")
    bank_account_last4: str | None
    policy: EscrowPolicy
    ratio_percent: int
    outstanding: Fen = strawberry.field(description="Prepaid principal owed to card holders.")
    required: Fen
    held: Fen
    short: bool = strawberry.field(description="Held is below required: a risk warning.")
    warning_level: str | None = strawberry.field(
        description="The jurisdiction's escrow warning line held has fallen below (e.g. Shanghai"
        " WARNING, SEVERE), if it draws such lines."
    )

    @strawberry.field
    async def last_check(self) -> EscrowCheck | None:
        row = await resolve.latest_check(self.merchant_id)
        if row is None:
            return None
        return EscrowCheck(
            day=row.day,
            outstanding=Fen(row.outstanding),
            required=Fen(row.required),
            held=Fen(row.held),
            short=row.short,
        )

    @strawberry.field(description="Newest first.")
    async def movements(self, first: int = 20) -> list[EscrowMovement]:
        return [
            EscrowMovement(
                transaction_id=strawberry.ID(r["transfer_id"]),
                kind=str(r["kind"]),
                amount=Fen(int(r["amount"])),
                at=r["created_at"],
            )
            for r in await resolve.movements(self.merchant_id, first)
        ]

    @classmethod
    async def build(cls, merchant: Merchant, account: EscrowAccountModel | None) -> EscrowAccount:
        pos = await resolve.position(merchant)
        return cls(
            merchant_id=strawberry.ID(merchant.id),
            merchant_name=merchant.name,
            custodian=account.custodian if account else None,
            bank_account_last4=account.bank_account_last4 if account else None,
            policy=EscrowPolicy(pos.policy.kind),
            ratio_percent=pos.policy.ratio_percent,
            outstanding=Fen(pos.outstanding),
            required=Fen(pos.required),
            held=Fen(pos.held),
            short=pos.short,
            warning_level=pos.warning,
        )


@strawberry.input
class EscrowAccountOpenInput:
    merchant_id: strawberry.ID
    custodian: str = strawberry.field(description="The custodian bank's organisation name.")
    bank_account_no: str
    policy: EscrowPolicy = EscrowPolicy.RATIO
    ratio_percent: int | None = strawberry.field(
        default=None, description="RATIO only; at least the statutory ratio."
    )


@strawberry.input
class EscrowWithdrawInput:
    merchant_id: strawberry.ID
    amount: Fen
    reason: str
    idempotency_key: str


@strawberry.input
class EscrowDepositInput:
    merchant_id: strawberry.ID
    amount: Fen
    idempotency_key: str


@strawberry.type
class EscrowPayload:
    escrow_account: EscrowAccount | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _built(info: Info, merchant_id: Awaitable[str]) -> EscrowAccount:
    """Run the change, then show the merchant's escrow as it is now."""
    merchant, account = await resolve.account(info.context, await merchant_id)
    return await EscrowAccount.build(merchant, account)


def _payload(account: EscrowAccount) -> dict[str, Any]:
    return {"escrow_account": account}


@strawberry.type
class EscrowMutation:
    @strawberry.mutation(extensions=allow(R.OPERATOR), description="开立存管账户")
    async def escrow_account_open(self, info: Info, input: EscrowAccountOpenInput) -> EscrowPayload:
        data = {
            "merchant_id": input.merchant_id,
            "custodian": input.custodian,
            "bank_account_no": input.bank_account_no,
            "policy": input.policy.value,
            "ratio_percent": input.ratio_percent,
        }
        opened = resolve.open_account(info.context, data)
        return await mutate(info, EscrowPayload, _built(info, opened), _payload)

    @strawberry.mutation(
        extensions=allow(R.CUSTODIAN),
        description="Release escrow to the merchant; refused below the required amount.",
    )
    async def escrow_withdraw(self, info: Info, input: EscrowWithdrawInput) -> EscrowPayload:
        data = {
            "merchant_id": input.merchant_id,
            "amount": input.amount,
            "reason": input.reason,
            "idempotency_key": input.idempotency_key,
        }
        done = resolve.withdraw(info.context, data)
        return await mutate(info, EscrowPayload, _built(info, done), _payload)

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.CUSTODIAN),
        description="Move operating funds into escrow (e.g. to cover a shortfall).",
    )
    async def escrow_deposit(self, info: Info, input: EscrowDepositInput) -> EscrowPayload:
        data = {
            "merchant_id": input.merchant_id,
            "amount": input.amount,
            "idempotency_key": input.idempotency_key,
        }
        done = resolve.deposit(info.context, data)
        return await mutate(info, EscrowPayload, _built(info, done), _payload)


@strawberry.type
class EscrowQuery:
    @strawberry.field(
        extensions=allow(R.MERCHANT_ADMIN, R.CUSTODIAN, R.REGULATOR, R.OPERATOR),
        description="A merchant's escrow position: its admin, its custodian, regulators of its"
        " region, operators.",
    )
    async def escrow_account(self, info: Info, merchant_id: strawberry.ID) -> EscrowAccount | None:
        try:
            merchant, account = await resolve.account(info.context, merchant_id)
        except DomainError:
            return None
        return await EscrowAccount.build(merchant, account)

    @strawberry.field(
        extensions=allow(R.REGULATOR, R.CUSTODIAN, R.OPERATOR),
        description="Merchants whose escrow the day's check found short (default: today).",
    )
    async def escrow_shortfalls(self, info: Info, day: str | None = None) -> list[EscrowShortfall]:
        return [
            EscrowShortfall(
                merchant_id=strawberry.ID(c.merchant_id),
                day=c.day,
                outstanding=Fen(c.outstanding),
                required=Fen(c.required),
                held=Fen(c.held),
            )
            for c in await resolve.shortfalls(info.context, day)
        ]

    @strawberry.field(extensions=allow(R.CUSTODIAN), description="The custodian's merchants.")
    async def custodian_escrow_accounts(self, info: Info) -> list[EscrowAccount]:
        return [
            await EscrowAccount.build(merchant, account)
            for merchant, account in await resolve.custodian_accounts(info.context)
        ]
