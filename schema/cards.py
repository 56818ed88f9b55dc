"""Card products, cards, their statements and live balance."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.cards import models
from resolvers import cards as resolve
from schema.common import Connection
from schema.errors import UserError, mutate
from schema.permissions import allow
from schema.scalars import Fen

R = Role


@strawberry.enum(description="记名卡 NAMED, 不记名卡 BEARER, 礼品卡 GIFT, 次卡 SESSION.")
class CardKind(Enum):
    NAMED = "NAMED"
    BEARER = "BEARER"
    GIFT = "GIFT"
    SESSION = "SESSION"


@strawberry.enum
class CardStatus(Enum):
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    LOST = "LOST"
    REPLACED = "REPLACED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


@strawberry.enum(description="How money is taken at the counter desk (柜面).")
class CounterChannel(Enum):
    CASH = "CASH"
    BANK_CARD = "BANK_CARD"


@strawberry.type(description="Pay `minAmount` or more in one top-up, get `bonus` as bonus value.")
class TopUpBonusRule:
    min_amount: Fen
    bonus: Fen


@strawberry.type(description="A card a merchant sells.")
class CardProduct:
    id: strawberry.ID
    merchant_id: strawberry.ID
    name: str
    kind: CardKind
    validity_days: int | None
    face_values: list[Fen]
    top_up_bonus_rules: list[TopUpBonusRule]
    bonus_first: bool = strawberry.field(description="Spend bonus value before principal.")
    pin_threshold: Fen | None = strawberry.field(description="Payments above this need the PIN.")
    session_count: int | None = strawberry.field(description="次卡: sessions in one pack.")
    session_price: Fen | None = strawberry.field(description="次卡: the price of one pack.")

    @classmethod
    def from_model(cls, p: models.CardProduct) -> CardProduct:
        return cls(
            id=strawberry.ID(p.id),
            merchant_id=strawberry.ID(p.merchant_id),
            name=p.name,
            kind=CardKind(p.kind),
            validity_days=p.validity_days,
            face_values=[Fen(v) for v in p.face_values or []],
            top_up_bonus_rules=[
                TopUpBonusRule(min_amount=Fen(r["min_amount"]), bonus=Fen(r["bonus"]))
                for r in p.bonus_rules or []
            ],
            bonus_first=p.bonus_first,
            pin_threshold=Fen(p.pin_threshold) if p.pin_threshold is not None else None,
            session_count=p.session_count,
            session_price=Fen(p.session_price) if p.session_price is not None else None,
        )


@strawberry.type(description="One line of a card's statement.")
class CardTransaction:
    id: strawberry.ID
    type: str = strawberry.field(
        description="ISSUE, TOPUP, PAYMENT, REFUND, VOID, REPLACE, HOLD, HOLD_CAPTURE,"
        " HOLD_RELEASED, HOLD_EXPIRED"
    )
    amount: Fen = strawberry.field(description="Signed change of the card's balance.")
    balance_after: Fen
    sessions: int = strawberry.field(description="次卡: signed change of the sessions left.")
    sessions_after: int | None = strawberry.field(description="次卡: sessions left after it.")
    store_id: strawberry.ID | None
    reference: strawberry.ID | None = strawberry.field(description="The payment, refund, ...")
    transaction_id: strawberry.ID
    created_at: datetime

    @classmethod
    def from_model(cls, a: models.CardActivity) -> CardTransaction:
        return cls(
            id=strawberry.ID(a.id),
            type=a.kind,
            amount=Fen(a.amount),
            balance_after=Fen(a.balance_after),
            sessions=a.sessions,
            sessions_after=a.sessions_after,
            store_id=strawberry.ID(a.store_id) if a.store_id else None,
            reference=strawberry.ID(a.reference) if a.reference else None,
            transaction_id=strawberry.ID(a.transfer_id),
            created_at=a.created_at,
        )


@strawberry.type(description="A prepaid card (预付卡).")
class Card:
    id: strawberry.ID
    number: str
    kind: CardKind
    status: CardStatus
    product_id: strawberry.ID
    merchant_id: strawberry.ID
    expires_at: datetime | None
    has_pin: bool
    has_physical_card: bool
    replaced_by_id: strawberry.ID | None
    created_at: datetime

    @strawberry.field(description="Principal plus bonus.")
    async def balance(self, info: Info) -> Fen:
        b = await resolve.balances(info.context).load(self.id)
        return Fen(b.total)

    @strawberry.field(description="本金: prepaid money, refundable.")
    async def principal_balance(self, info: Info) -> Fen:
        return Fen((await resolve.balances(info.context).load(self.id)).principal)

    @strawberry.field(description="赠送金: bonus value, spendable, never refunded as cash.")
    async def bonus_balance(self, info: Info) -> Fen:
        return Fen((await resolve.balances(info.context).load(self.id)).bonus)

    @strawberry.field(description="次卡: sessions left (0 for stored-value cards).")
    async def sessions(self, info: Info) -> int:
        return (await resolve.balances(info.context).load(self.id)).sessions

    @strawberry.field(description="Newest first.")
    async def transactions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CardTransaction]:
        page = await resolve.transactions(info.context, self.id, first, after)
        return Connection.of(page, CardTransaction.from_model)

    @classmethod
    def from_model(cls, c: models.Card) -> Card:
        return cls(
            id=strawberry.ID(c.id),
            number=c.number,
            kind=CardKind(c.kind),
            status=CardStatus(c.status),
            product_id=strawberry.ID(c.product_id),
            merchant_id=strawberry.ID(c.merchant_id),
            expires_at=c.expires_at,
            has_pin=c.pin_hash is not None,
            has_physical_card=c.uid_hash is not None,
            replaced_by_id=strawberry.ID(c.replaced_by_id) if c.replaced_by_id else None,
            created_at=c.created_at,
        )


@strawberry.type(description="A committed change of a card's balance.")
class BalanceEvent:
    card_id: strawberry.ID
    balance: Fen
    delta: Fen
    reason: str
    transaction_id: strawberry.ID
    at: datetime
    sessions: int | None = strawberry.field(
        default=None, description="次卡: sessions left after the change."
    )
    sessions_delta: int | None = None


@strawberry.input
class TopUpBonusRuleInput:
    min_amount: Fen
    bonus: Fen


@strawberry.input
class CardProductCreateInput:
    merchant_id: strawberry.ID
    name: str
    kind: CardKind
    validity_days: int | None = None
    top_up_bonus_rules: list[TopUpBonusRuleInput] | None = None
    face_values: list[Fen] | None = None
    bonus_first: bool = False
    pin_threshold: Fen | None = None
    session_count: int | None = strawberry.field(
        default=None, description="次卡 (kind SESSION): sessions in one pack."
    )
    session_price: Fen | None = strawberry.field(
        default=None, description="次卡: the price of one pack; cards are bought in whole packs."
    )


@strawberry.input
class CardIssueInput:
    product_id: strawberry.ID
    idempotency_key: str
    holder_phone: str | None = None
    initial_load: Fen | None = None
    card_uid: str | None = strawberry.field(
        default=None, description="Bind a physical IC/NFC card (hex UID) at issue."
    )
    store_id: strawberry.ID | None = None
    channel: CounterChannel = strawberry.field(
        default_factory=lambda: CounterChannel.CASH,
        description="How the initial load is paid at the counter.",
    )


@strawberry.input
class CardIdInput:
    card_id: strawberry.ID


@strawberry.input
class CardReplaceInput:
    card_id: strawberry.ID
    idempotency_key: str
    card_uid: str | None = None


@strawberry.input
class CardSetPinInput:
    card_id: strawberry.ID
    pin: str


@strawberry.input
class CardBindUidInput:
    card_id: strawberry.ID
    card_uid: str


@strawberry.type
class CardProductPayload:
    card_product: CardProduct | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CardPayload:
    card: Card | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _card(c: models.Card) -> dict[str, Any]:
    return {"card": Card.from_model(c)}


STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)
HOLDER_OR_STAFF = (R.CONSUMER, *STAFF, R.OPERATOR)


@strawberry.type
class CardMutation:
    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR))
    async def card_product_create(
        self, info: Info, input: CardProductCreateInput
    ) -> CardProductPayload:
        data = {
            "merchant_id": input.merchant_id,
            "name": input.name,
            "kind": input.kind.value,
            "validity_days": input.validity_days,
            "bonus_rules": [
                {"min_amount": r.min_amount, "bonus": r.bonus}
                for r in input.top_up_bonus_rules or []
            ],
            "face_values": list(input.face_values or []),
            "bonus_first": input.bonus_first,
            "pin_threshold": input.pin_threshold,
            "session_count": input.session_count,
            "session_price": input.session_price,
        }
        return await mutate(
            info,
            CardProductPayload,
            resolve.product_create(info.context, data),
            lambda p: {"card_product": CardProduct.from_model(p)},
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL, R.OPERATOR),
        description="Sell a card at the counter (售卡).",
    )
    async def card_issue(self, info: Info, input: CardIssueInput) -> CardPayload:
        data = {
            "product_id": input.product_id,
            "holder_phone": input.holder_phone,
            "initial_load": input.initial_load,
            "card_uid": input.card_uid,
            "idempotency_key": input.idempotency_key,
            "store_id": input.store_id,
            "channel": input.channel.value,
        }
        return await mutate(info, CardPayload, resolve.card_issue(info.context, data), _card)

    @strawberry.mutation(extensions=allow(*HOLDER_OR_STAFF), description="冻结")
    async def card_freeze(self, info: Info, input: CardIdInput) -> CardPayload:
        return await mutate(
            info, CardPayload, resolve.card_status(info.context, input.card_id, "freeze"), _card
        )

    @strawberry.mutation(extensions=allow(*HOLDER_OR_STAFF), description="解冻")
    async def card_unfreeze(self, info: Info, input: CardIdInput) -> CardPayload:
        return await mutate(
            info, CardPayload, resolve.card_status(info.context, input.card_id, "unfreeze"), _card
        )

    @strawberry.mutation(extensions=allow(*HOLDER_OR_STAFF), description="挂失")
    async def card_report_lost(self, info: Info, input: CardIdInput) -> CardPayload:
        return await mutate(
            info,
            CardPayload,
            resolve.card_status(info.context, input.card_id, "report_lost"),
            _card,
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.OPERATOR), description="补卡: moves the balance to a new card."
    )
    async def card_replace(self, info: Info, input: CardReplaceInput) -> CardPayload:
        return await mutate(
            info,
            CardPayload,
            resolve.card_replace(
                info.context, input.card_id, input.card_uid, input.idempotency_key
            ),
            _card,
        )

    @strawberry.mutation(extensions=allow(R.CONSUMER, *STAFF))
    async def card_set_pin(self, info: Info, input: CardSetPinInput) -> CardPayload:
        return await mutate(
            info, CardPayload, resolve.card_set_pin(info.context, input.card_id, input.pin), _card
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.OPERATOR),
        description="Bind a physical card to an existing card.",
    )
    async def card_bind_uid(self, info: Info, input: CardBindUidInput) -> CardPayload:
        return await mutate(
            info,
            CardPayload,
            resolve.card_bind_uid(info.context, input.card_id, input.card_uid),
            _card,
        )


@strawberry.type
class CardQuery:
    @strawberry.field(
        extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL, R.OPERATOR),
        description="A card of the viewer (holder) or of the viewer's merchant.",
    )
    async def card(self, info: Info, id: strawberry.ID) -> Card | None:
        row = await resolve.card(info.context, id)
        return Card.from_model(row) if row else None

    @strawberry.field(extensions=allow(R.CONSUMER))
    async def my_cards(self, info: Info) -> list[Card]:
        return [Card.from_model(c) for c in await resolve.my_cards(info.context)]


@strawberry.type
class CardSubscription:
    @strawberry.subscription(
        extensions=allow(R.CONSUMER, *STAFF),
        description="The card's holder and its merchant's staff only.",
    )
    async def balance_changed(
        self, info: Info, card_id: strawberry.ID
    ) -> AsyncGenerator[BalanceEvent, None]:
        async for m in resolve.balance_events(info.context, card_id):
            yield BalanceEvent(
                card_id=strawberry.ID(m["cardId"]),
                balance=Fen(m["balance"]),
                delta=Fen(m["delta"]),
                reason=str(m["reason"]),
                transaction_id=strawberry.ID(m["transactionId"]),
                at=datetime.fromisoformat(m["at"]),
                sessions=m.get("sessions"),
                sessions_delta=m.get("sessionsDelta"),
            )
