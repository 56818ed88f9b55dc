"""Two-phase card payments (预授权): hold, capture, release."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.payments import models
from resolvers import cards as resolve
from schema.cards import Card
from schema.errors import UserError
from schema.scalars import Fen


@strawberry.type(
    description="Money set aside on a card: captured (part or all) as a payment, released, or"
    " expired by the database clock, its money going back to the card."
)
class Hold:
    id: strawberry.ID
    amount: Fen
    captured_amount: Fen
    status: str = strawberry.field(description="PENDING, CAPTURED, RELEASED, EXPIRED")
    reference: str | None = strawberry.field(description="The booking or order it serves.")
    store_id: strawberry.ID
    card_id: strawberry.ID
    payment_id: strawberry.ID | None = strawberry.field(description="Set once captured.")
    expires_at: datetime
    created_at: datetime
    settled_at: datetime | None

    @strawberry.field
    async def card(self, info: Info) -> Card:
        return Card.from_model(await resolve.card_by_id(info.context, self.card_id))

    @classmethod
    def from_model(cls, h: models.Hold) -> Hold:
        return cls(
            id=strawberry.ID(h.id),
            amount=Fen(h.amount),
            captured_amount=Fen(h.captured_amount),
            status=h.status,
            reference=h.reference,
            store_id=strawberry.ID(h.store_id),
            card_id=strawberry.ID(h.card_id),
            payment_id=strawberry.ID(h.payment_id) if h.payment_id else None,
            expires_at=h.expires_at,
            created_at=h.created_at,
            settled_at=h.settled_at,
        )


@strawberry.input(description="Exactly one of cardId, paymentCode, cardUid.")
class CardHoldInput:
    store_id: strawberry.ID
    amount: Fen
    idempotency_key: str
    card_id: strawberry.ID | None = None
    payment_code: str | None = None
    card_uid: str | None = None
    pin: str | None = None
    expires_in_seconds: int | None = strawberry.field(
        default=None, description="1 minute to 30 days; 7 days when not given."
    )
    reference: str | None = None


@strawberry.input
class HoldCaptureInput:
    hold_id: strawberry.ID
    amount: Fen
    idempotency_key: str


@strawberry.input
class HoldIdInput:
    hold_id: strawberry.ID


@strawberry.type
class HoldPayload:
    hold: Hold | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
