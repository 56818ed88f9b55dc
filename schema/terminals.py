"""Terminals at work: heartbeat, key rotation and revocation; charges waiting for a card tap;
the reader bridge's taps and DESFire relay; the tap policy of a card product."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from domain import clock
from domain.actor import Role
from domain.merchants.service import RegisteredTerminal
from domain.terminals import models, taps, uid_guard
from resolvers import terminals as resolve
from schema.errors import UserError, mutate
from schema.merchants import Terminal, TerminalPayload
from schema.payments import Payment
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


def _user_error(stored: dict[str, Any] | None, lang: str) -> UserError | None:
    if not stored:
        return None
    return UserError(
        field=stored.get("field"),
        code=str(stored["code"]),
        message=str(stored["en"] if lang == "en" else stored["zh"]),
    )


@strawberry.enum
class TerminalChargeStatus(Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


@strawberry.enum(description="What a product's physical cards are.")
class CardTechnology(Enum):
    UID = "UID"
    DESFIRE_EV2 = "DESFIRE_EV2"
    DESFIRE_EV3 = "DESFIRE_EV3"


@strawberry.type(
    description="An amount entered on the terminal, paid by the next card tapped on its"
    " reader. PENDING until paid, cancelled or expired; a refused tap leaves it PENDING with"
    " `lastError` (UID_PIN_REQUIRED or INVALID_PIN: send the PIN with terminalChargeConfirmPin)."
)
class TerminalCharge:
    id: strawberry.ID
    status: TerminalChargeStatus
    amount: Fen
    terminal_id: strawberry.ID
    store_id: strawberry.ID
    payment_id: strawberry.ID | None
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    stored_error: strawberry.Private[dict[str, Any] | None]

    @strawberry.field(description="Why the last tap was refused, while the charge waits.")
    def last_error(self, info: Info) -> UserError | None:
        return _user_error(self.stored_error, info.context.lang)

    @strawberry.field
    async def payment(self, info: Info) -> Payment | None:
        if self.payment_id is None:
            return None
        return Payment.from_model(await resolve.payment_of(self.payment_id))

    @classmethod
    def from_model(cls, c: models.TerminalCharge) -> TerminalCharge:
        return cls(
            id=strawberry.ID(c.id),
            status=TerminalChargeStatus(c.status),
            amount=Fen(c.amount),
            terminal_id=strawberry.ID(c.terminal_id),
            store_id=strawberry.ID(c.store_id),
            payment_id=strawberry.ID(c.payment_id) if c.payment_id else None,
            created_at=c.created_at,
            expires_at=c.expires_at,
            completed_at=c.completed_at,
            stored_error=c.last_error,
        )


@strawberry.type(description="A change of a terminal charge.")
class TerminalChargeEvent:
    charge_id: strawberry.ID
    status: TerminalChargeStatus
    amount: Fen
    payment_id: strawberry.ID | None
    error: UserError | None
    at: datetime


@strawberry.type(description="What the reader bridge needs to authenticate DESFire cards.")
class ReaderDesfireConfig:
    aid: str = strawberry.field(description="Application id, 6 hex digits as written (F0594B).")
    key_no: int


@strawberry.type
class CardProductTapPolicy:
    product_id: strawberry.ID
    technology: CardTechnology
    taps_per_minute: int = strawberry.field(
        description="More taps by UID in one minute need the PIN."
    )
    daily_amount_without_pin: Fen = strawberry.field(
        description="Payments by UID without PIN per card and day (China time) up to this."
    )

    @classmethod
    def from_policy(cls, p: uid_guard.Policy) -> CardProductTapPolicy:
        return cls(
            product_id=strawberry.ID(p.product_id),
            technology=CardTechnology(p.technology),
            taps_per_minute=p.taps_per_minute,
            daily_amount_without_pin=Fen(p.daily_amount_without_pin),
        )


@strawberry.input
class TerminalHeartbeatInput:
    app_version: str | None = None
    reader_status: str | None = strawberry.field(
        default=None, description="Free text, at most 200 characters (readers, queue)."
    )


@strawberry.input
class TerminalIdInput:
    terminal_id: strawberry.ID


@strawberry.input
class TerminalChargeCreateInput:
    amount: Fen
    idempotency_key: str


@strawberry.input
class TerminalChargeIdInput:
    charge_id: strawberry.ID


@strawberry.input
class TerminalChargeConfirmPinInput:
    charge_id: strawberry.ID
    pin: str


@strawberry.input(description="The card's last AuthenticateEV2First answer, relayed.")
class DesfireProofInput:
    auth_id: strawberry.ID
    card_response: str = strawberry.field(description="32 bytes, hex.")


@strawberry.input
class ReaderTapInput:
    uid: str = strawberry.field(description="The card's UID in hex (4, 7 or 10 bytes).")
    idempotency_key: str = strawberry.field(description="One per physical tap, kept on retries.")
    tap_age_ms: int = strawberry.field(
        default=0, description="How long ago the card was tapped, by the bridge's clock."
    )
    desfire_proof: DesfireProofInput | None = None


@strawberry.input
class ReaderDesfireAuthenticateInput:
    uid: str
    card_challenge: str = strawberry.field(description="E(K, RndB), 16 bytes hex.")


@strawberry.input
class CardProductTapPolicySetInput:
    product_id: strawberry.ID
    technology: CardTechnology
    taps_per_minute: int | None = None
    daily_amount_without_pin: Fen | None = None


@strawberry.type
class TerminalHeartbeatPayload:
    terminal: Terminal | None = None
    desfire: ReaderDesfireConfig | None = strawberry.field(
        default=None, description="Null when the server accepts no DESFire cards."
    )
    server_time: datetime | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TerminalChargePayload:
    terminal_charge: TerminalCharge | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReaderTapPayload:
    payment: Payment | None = None
    terminal_charge: TerminalCharge | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReaderDesfireAuthPayload:
    auth_id: strawberry.ID | None = None
    reader_response: str | None = strawberry.field(
        default=None, description="E(K, RndA || RndB'), 32 bytes hex: send it to the card."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CardProductTapPolicyPayload:
    tap_policy: CardProductTapPolicy | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _terminal_key(r: RegisteredTerminal) -> dict[str, Any]:
    return {"terminal": Terminal.from_model(r.terminal), "terminal_key": r.key}


def _charge(c: models.TerminalCharge) -> dict[str, Any]:
    return {"terminal_charge": TerminalCharge.from_model(c)}


def _heartbeat(t: Any) -> dict[str, Any]:
    app = resolve.desfire_application()
    return {
        "terminal": Terminal.from_model(t),
        "desfire": ReaderDesfireConfig(aid=app.aid_hex, key_no=app.key_no) if app else None,
        "server_time": clock.now(),
    }


def _tap(r: taps.TapResult) -> dict[str, Any]:
    return {
        "payment": Payment.from_model(r.payment),
        "terminal_charge": TerminalCharge.from_model(r.charge),
    }


@strawberry.type
class TerminalMutation:
    @strawberry.mutation(
        extensions=allow(R.TERMINAL),
        description="The device is alive: last seen, app version, reader status. Answers with"
        " the DESFire application readers authenticate with.",
    )
    async def terminal_heartbeat(
        self, info: Info, input: TerminalHeartbeatInput
    ) -> TerminalHeartbeatPayload:
        return await mutate(
            info,
            TerminalHeartbeatPayload,
            resolve.heartbeat(info.context, input.app_version, input.reader_status),
            _heartbeat,
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR, R.TERMINAL),
        description="A new terminal key, shown once; the old key stops working. A terminal may"
        " rotate its own key.",
    )
    async def terminal_key_rotate(self, info: Info, input: TerminalIdInput) -> TerminalPayload:
        return await mutate(
            info,
            TerminalPayload,
            resolve.key_rotate(info.context, input.terminal_id),
            _terminal_key,
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR),
        description="The terminal's key stops working for good.",
    )
    async def terminal_revoke(self, info: Info, input: TerminalIdInput) -> TerminalPayload:
        return await mutate(
            info,
            TerminalPayload,
            resolve.revoke(info.context, input.terminal_id),
            lambda t: {"terminal": Terminal.from_model(t)},
        )

    @strawberry.mutation(
        extensions=allow(R.TERMINAL),
        description="The amount staff entered; the next card tapped on the reader pays it"
        " (within 120 s). The same idempotency key and amount return the same charge.",
    )
    async def terminal_charge_create(
        self, info: Info, input: TerminalChargeCreateInput
    ) -> TerminalChargePayload:
        return await mutate(
            info,
            TerminalChargePayload,
            resolve.charge_create(info.context, input.amount, input.idempotency_key),
            _charge,
        )

    @strawberry.mutation(extensions=allow(R.TERMINAL, *STAFF))
    async def terminal_charge_cancel(
        self, info: Info, input: TerminalChargeIdInput
    ) -> TerminalChargePayload:
        return await mutate(
            info,
            TerminalChargePayload,
            resolve.charge_cancel(info.context, input.charge_id),
            _charge,
        )

    @strawberry.mutation(
        extensions=allow(R.TERMINAL),
        description="The tap was refused for want of the PIN: pay with the tapped card and"
        " this PIN.",
    )
    async def terminal_charge_confirm_pin(
        self, info: Info, input: TerminalChargeConfirmPinInput
    ) -> TerminalChargePayload:
        return await mutate(
            info,
            TerminalChargePayload,
            resolve.charge_confirm_pin(info.context, input.charge_id, input.pin),
            _charge,
        )

    @strawberry.mutation(
        extensions=allow(R.TERMINAL),
        description="The reader bridge reports a card tap: the terminal's oldest waiting charge"
        " is paid with the card. NO_PENDING_CHARGE when none waits (nothing is charged). A"
        " report sent again with the same idempotency key returns the first payment.",
    )
    async def reader_tap(self, info: Info, input: ReaderTapInput) -> ReaderTapPayload:
        proof = input.desfire_proof
        data = {
            "uid": input.uid,
            "idempotency_key": input.idempotency_key,
            "tap_age_ms": input.tap_age_ms,
            "proof": taps.DesfireProof(
                auth_id=str(proof.auth_id), card_response=proof.card_response
            )
            if proof is not None
            else None,
        }
        return await mutate(info, ReaderTapPayload, resolve.reader_tap(info.context, data), _tap)

    @strawberry.mutation(
        extensions=allow(R.TERMINAL),
        description="DESFire AuthenticateEV2First relay: the card's E(K, RndB) in, the answer"
        " E(K, RndA || RndB') out; the card's reply goes back in readerTap's desfireProof.",
    )
    async def reader_desfire_authenticate(
        self, info: Info, input: ReaderDesfireAuthenticateInput
    ) -> ReaderDesfireAuthPayload:
        return await mutate(
            info,
            ReaderDesfireAuthPayload,
            resolve.desfire_auth(info.context, input.uid, input.card_challenge),
            lambda c: {
                "auth_id": strawberry.ID(c.auth_id),
                "reader_response": c.reader_response.hex().upper(),
            },
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR),
        description="Declare a product's cards (UID or DESFire) and the limits on UID taps.",
    )
    async def card_product_tap_policy_set(
        self, info: Info, input: CardProductTapPolicySetInput
    ) -> CardProductTapPolicyPayload:
        data = {
            "product_id": input.product_id,
            "technology": input.technology.value,
            "taps_per_minute": input.taps_per_minute,
            "daily_amount_without_pin": input.daily_amount_without_pin,
        }
        return await mutate(
            info,
            CardProductTapPolicyPayload,
            resolve.tap_policy_set(info.context, data),
            lambda p: {"tap_policy": CardProductTapPolicy.from_policy(p)},
        )


@strawberry.type
class TerminalQuery:
    @strawberry.field(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR),
        description="A merchant's terminals with their last-seen time and reader status.",
    )
    async def terminals(
        self, info: Info, merchant_id: strawberry.ID, store_id: strawberry.ID | None = None
    ) -> list[Terminal]:
        rows = await resolve.terminals(info.context, merchant_id, store_id)
        return [Terminal.from_model(t) for t in rows]

    @strawberry.field(extensions=allow(R.TERMINAL, *STAFF, R.OPERATOR))
    async def terminal_charge(self, info: Info, id: strawberry.ID) -> TerminalCharge | None:
        row = await resolve.charge(info.context, id)
        return TerminalCharge.from_model(row) if row else None

    @strawberry.field(extensions=allow(*STAFF, R.TERMINAL, R.OPERATOR))
    async def card_product_tap_policy(
        self, info: Info, product_id: strawberry.ID
    ) -> CardProductTapPolicy | None:
        policy = await resolve.tap_policy(info.context, product_id)
        return CardProductTapPolicy.from_policy(policy) if policy else None


@strawberry.type
class TerminalSubscription:
    @strawberry.subscription(
        extensions=allow(R.TERMINAL, *STAFF),
        description="The charge now, then each change until it stops waiting.",
    )
    async def terminal_charge_updated(
        self, info: Info, charge_id: strawberry.ID
    ) -> AsyncGenerator[TerminalChargeEvent, None]:
        async for m in resolve.charge_events(info.context, charge_id):
            yield TerminalChargeEvent(
                charge_id=strawberry.ID(m["chargeId"]),
                status=TerminalChargeStatus(m["status"]),
                amount=Fen(m["amount"]),
                payment_id=strawberry.ID(m["paymentId"]) if m.get("paymentId") else None,
                error=_user_error(m.get("error"), info.context.lang),
                at=datetime.fromisoformat(m["at"]),
            )
