"""退卡: cancelling a card with a refund of its remaining principal."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.cards import models
from resolvers import cards as resolve
from schema.errors import UserError, mutate
from schema.permissions import allow
from schema.scalars import Fen

R = Role


@strawberry.enum
class PayoutMethod(Enum):
    CASH = "CASH"
    BANK_ACCOUNT = "BANK_ACCOUNT"


@strawberry.type(description="退卡: REQUESTED, then COMPLETED (paid out) or REJECTED.")
class CardCancellation:
    id: strawberry.ID
    card_id: strawberry.ID
    status: str
    reason: str
    cooling_off: bool = strawberry.field(
        description="Asked within the cooling-off period (冷静期): full and unconditional."
    )
    pay_by: datetime | None = strawberry.field(description="A cooling-off refund is due by then.")
    payout_method: PayoutMethod
    bank_account: str | None = strawberry.field(description="Masked: only the last 4 digits.")
    principal_refunded: Fen
    bonus_forfeited: Fen
    sessions_forfeited: int
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_model(cls, c: models.CardCancellation) -> CardCancellation:
        return cls(
            id=strawberry.ID(c.id),
            card_id=strawberry.ID(c.card_id),
            status=c.status,
            reason=c.reason,
            cooling_off=c.cooling_off,
            pay_by=c.pay_by,
            payout_method=PayoutMethod(c.payout_method),
            bank_account=f"**** {c.bank_account_last4}" if c.bank_account_last4 else None,
            principal_refunded=Fen(c.principal_refunded),
            bonus_forfeited=Fen(c.bonus_forfeited),
            sessions_forfeited=c.sessions_forfeited,
            decision_note=c.decision_note,
            created_at=c.created_at,
            decided_at=c.decided_at,
        )


@strawberry.input
class CardCancelRequestInput:
    card_id: strawberry.ID
    reason: str
    payout_method: PayoutMethod
    bank_account_no: str | None = None
    account_name: str | None = None


@strawberry.input
class CardCancellationIdInput:
    cancellation_id: strawberry.ID


@strawberry.input
class CardCancelRejectInput:
    cancellation_id: strawberry.ID
    note: str


@strawberry.type
class CardCancellationPayload:
    cancellation: CardCancellation | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _payload(c: models.CardCancellation) -> dict[str, Any]:
    return {"cancellation": CardCancellation.from_model(c)}


@strawberry.type
class CancellationMutation:
    @strawberry.mutation(
        extensions=allow(R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF),
        description="Ask to cancel a card and be paid its remaining principal (退卡).",
    )
    async def card_cancel_request(
        self, info: Info, input: CardCancelRequestInput
    ) -> CardCancellationPayload:
        data = {
            "card_id": input.card_id,
            "reason": input.reason,
            "payout_method": input.payout_method.value,
            "bank_account_no": input.bank_account_no,
            "account_name": input.account_name,
        }
        call = resolve.cancellation_request(info.context, data)
        return await mutate(info, CardCancellationPayload, call, _payload)

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.CUSTODIAN),
        description="Pay it out and cancel the card, once (the custodian only for a merchant"
        " that has stopped trading).",
    )
    async def card_cancel_approve(
        self, info: Info, input: CardCancellationIdInput
    ) -> CardCancellationPayload:
        call = resolve.cancellation_approve(info.context, input.cancellation_id)
        return await mutate(info, CardCancellationPayload, call, _payload)

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.CUSTODIAN),
        description="Refuse with a reason; never within the cooling-off period.",
    )
    async def card_cancel_reject(
        self, info: Info, input: CardCancelRejectInput
    ) -> CardCancellationPayload:
        call = resolve.cancellation_reject(info.context, input.cancellation_id, input.note)
        return await mutate(info, CardCancellationPayload, call, _payload)


@strawberry.type
class CancellationQuery:
    @strawberry.field(extensions=allow(R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR))
    async def card_cancellation(self, info: Info, id: strawberry.ID) -> CardCancellation | None:
        found = await resolve.cancellation_by_id(info.context, id)
        return CardCancellation.from_model(found) if found else None

    @strawberry.field(extensions=allow(R.MERCHANT_ADMIN), description="Newest first.")
    async def card_cancellations(
        self, info: Info, merchant_id: strawberry.ID, status: str | None = None
    ) -> list[CardCancellation]:
        rows = await resolve.merchant_cancellations(info.context, merchant_id, status)
        return [CardCancellation.from_model(c) for c in rows]
