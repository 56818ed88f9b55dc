"""Top-ups, payments, refunds and same-day voids."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.channels import wechatpay_orders
from domain.payments import models, topups
from resolvers import cards as resolve
from schema.cards import Card
from schema.errors import UserError, mutate
from schema.holds import CardHoldInput, Hold, HoldCaptureInput, HoldIdInput, HoldPayload
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


@strawberry.enum
class TopUpChannel(Enum):
    CASH = "CASH"
    BANK_CARD = "BANK_CARD"
    BANK_TRANSFER = "BANK_TRANSFER"
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"


@strawberry.type(
    description="微信支付 APP调起支付: the fields of the OpenSDK's PayReq, as they are. `sign` is"
    " SHA256withRSA by the merchant key over appId, timeStamp, nonceStr and prepayId."
)
class WechatAppPayParams:
    app_id: str = strawberry.field(description="PayReq.appId (appid)")
    partner_id: str = strawberry.field(description="PayReq.partnerId (partnerid: the mchid)")
    prepay_id: str = strawberry.field(description="PayReq.prepayId (prepayid, valid 2 hours)")
    package: str = strawberry.field(description="PayReq.packageValue: always Sign=WXPay")
    nonce_str: str = strawberry.field(description="PayReq.nonceStr (noncestr)")
    time_stamp: str = strawberry.field(description="PayReq.timeStamp (timestamp, unix seconds)")
    sign: str = strawberry.field(description="PayReq.sign (base64 RSA signature)")

    @classmethod
    def of(cls, p: wechatpay_orders.AppPayParams) -> WechatAppPayParams:
        return cls(
            app_id=p.appid,
            partner_id=p.partnerid,
            prepay_id=p.prepayid,
            package=p.package,
            nonce_str=p.noncestr,
            time_stamp=p.timestamp,
            sign=p.sign,
        )


@strawberry.type(
    description="What the app hands to the provider's SDK to pay a PENDING online top-up."
    " Signed afresh on every read; the order behind it (out_trade_no, amount) does not change."
)
class TopUpPayRequest:
    channel: TopUpChannel
    wechat_app: WechatAppPayParams | None = strawberry.field(
        description="WECHAT_PAY: the PayReq for the WeChat OpenSDK (APP payment)."
    )
    alipay_order_string: str | None = strawberry.field(
        description="ALIPAY: the signed orderStr for the Alipay SDK (alipay.trade.app.pay)."
    )
    bank_transfer: BankTransferInstructions | None = strawberry.field(
        description="BANK_TRANSFER: where to send the money and the reference to quote."
    )


@strawberry.type(description="A transfer into the merchant's escrow account (资金存管).")
class BankTransferInstructions:
    custodian: str
    account_last4: str
    reference: str = strawberry.field(description="Quote it as the transfer's 附言.")
    amount: Fen


@strawberry.type(
    description="充值. CASH succeeds at once; WECHAT_PAY and ALIPAY stay PENDING until the"
    " provider's notification (the id is the out_trade_no to pay), then SUCCEEDED; FAILED when"
    " closed unpaid or the provider would not take the order, EXPIRED when not paid in time,"
    " REFUND_DUE when paid but not creditable."
)
class TopUp:
    id: strawberry.ID
    status: str
    amount: Fen
    bonus: Fen
    channel: TopUpChannel
    card_id: strawberry.ID
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="Pay before this (online).")
    completed_at: datetime | None
    failure_reason: str | None
    row: strawberry.Private[models.TopUp]

    @strawberry.field
    async def card(self, info: Info) -> Card:
        return Card.from_model(await resolve.card_by_id(info.context, self.card_id))

    @strawberry.field(
        description="What the app pays with, while the top-up is PENDING and before expiresAt;"
        " null for counter channels and once it can no longer be paid."
    )
    async def pay_request(self) -> TopUpPayRequest | None:
        request = await topups.pay_request(self.row)
        if request is None:
            return None
        return TopUpPayRequest(
            channel=TopUpChannel(request.channel),
            wechat_app=WechatAppPayParams.of(request.wechat_app) if request.wechat_app else None,
            alipay_order_string=request.alipay_order_string,
            bank_transfer=BankTransferInstructions(
                custodian=request.bank_transfer.custodian,
                account_last4=request.bank_transfer.account_last4,
                reference=request.bank_transfer.reference,
                amount=Fen(request.bank_transfer.amount),
            )
            if request.bank_transfer
            else None,
        )

    @classmethod
    def from_model(cls, t: models.TopUp) -> TopUp:
        return cls(
            id=strawberry.ID(t.id),
            status=t.status,
            amount=Fen(t.amount),
            bonus=Fen(t.bonus),
            channel=TopUpChannel(t.channel),
            card_id=strawberry.ID(t.card_id),
            created_at=t.created_at,
            expires_at=t.expires_at,
            completed_at=t.completed_at,
            failure_reason=t.failure_reason,
            row=t,
        )


@strawberry.type(description="A card payment (消费).")
class Payment:
    id: strawberry.ID
    amount: Fen
    principal_amount: Fen
    bonus_amount: Fen
    refunded_amount: Fen
    sessions: int = strawberry.field(description="次卡: sessions redeemed (0 for money).")
    status: str = strawberry.field(description="SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED, VOIDED")
    store_id: strawberry.ID
    card_id: strawberry.ID
    transaction_id: strawberry.ID
    created_at: datetime

    @strawberry.field
    async def card(self, info: Info) -> Card:
        return Card.from_model(await resolve.card_by_id(info.context, self.card_id))

    @classmethod
    def from_model(cls, p: models.Payment) -> Payment:
        return cls(
            id=strawberry.ID(p.id),
            amount=Fen(p.amount),
            principal_amount=Fen(p.principal_amount),
            bonus_amount=Fen(p.bonus_amount),
            refunded_amount=Fen(p.refunded_amount),
            sessions=p.sessions,
            status=p.status,
            store_id=strawberry.ID(p.store_id),
            card_id=strawberry.ID(p.card_id),
            transaction_id=strawberry.ID(p.transfer_id),
            created_at=p.created_at,
        )


@strawberry.type(description="A refund or a same-day void of a payment.")
class Refund:
    id: strawberry.ID
    amount: Fen
    principal_amount: Fen
    bonus_amount: Fen
    kind: str = strawberry.field(description="REFUND or VOID")
    reason: str | None
    payment_id: strawberry.ID
    created_at: datetime

    @strawberry.field
    async def payment(self, info: Info) -> Payment:
        return Payment.from_model(await resolve.payment_by_id(self.payment_id))

    @classmethod
    def from_model(cls, r: models.Refund) -> Refund:
        return cls(
            id=strawberry.ID(r.id),
            amount=Fen(r.amount),
            principal_amount=Fen(r.principal_amount),
            bonus_amount=Fen(r.bonus_amount),
            kind=r.kind,
            reason=r.reason,
            payment_id=strawberry.ID(r.payment_id),
            created_at=r.created_at,
        )


@strawberry.input
class TopUpInput:
    card_id: strawberry.ID
    amount: Fen
    channel: TopUpChannel
    idempotency_key: str
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Counter top-ups: the store (staff of one store may omit it)."
    )


@strawberry.input(description="Exactly one of cardId, paymentCode, cardUid.")
class PayInput:
    store_id: strawberry.ID
    amount: Fen
    idempotency_key: str
    card_id: strawberry.ID | None = None
    payment_code: str | None = None
    card_uid: str | None = None
    pin: str | None = None
    coupon_ids: list[strawberry.ID] | None = None


@strawberry.input(description="次卡核销. Exactly one of cardId, paymentCode, cardUid.")
class SessionRedeemInput:
    store_id: strawberry.ID
    idempotency_key: str
    sessions: int = 1
    card_id: strawberry.ID | None = None
    payment_code: str | None = None
    card_uid: str | None = None
    pin: str | None = None


@strawberry.input
class RefundInput:
    payment_id: strawberry.ID
    amount: Fen
    idempotency_key: str
    reason: str | None = None


@strawberry.input
class PaymentVoidInput:
    payment_id: strawberry.ID
    idempotency_key: str
    reason: str | None = None


@strawberry.type
class TopUpPayload:
    top_up: TopUp | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentPayload:
    payment: Payment | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RefundPayload:
    refund: Refund | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class BankTransferConfirmInput:
    top_up_id: strawberry.ID
    amount: Fen = strawberry.field(description="What arrived in the escrow account.")
    bank_reference: str = strawberry.field(description="The bank's transfer reference (流水号).")


@strawberry.type
class PaymentMutation:
    @strawberry.mutation(
        extensions=allow(R.CUSTODIAN),
        description="The custodian bank confirms a bank transfer arrived: the top-up is credited"
        " once.",
    )
    async def bank_transfer_confirm(
        self, info: Info, input: BankTransferConfirmInput
    ) -> TopUpPayload:
        call = resolve.bank_transfer_confirm(
            info.context, input.top_up_id, input.amount, input.bank_reference
        )
        return await mutate(info, TopUpPayload, call, lambda t: {"top_up": TopUp.from_model(t)})

    @strawberry.mutation(extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL))
    async def top_up(self, info: Info, input: TopUpInput) -> TopUpPayload:
        data = {
            "card_id": input.card_id,
            "amount": input.amount,
            "channel": input.channel.value,
            "idempotency_key": input.idempotency_key,
            "store_id": input.store_id,
        }
        return await mutate(
            info,
            TopUpPayload,
            resolve.top_up(info.context, data),
            lambda t: {"top_up": TopUp.from_model(t)},
        )

    @strawberry.mutation(
        extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL),
        description="Charge a card; a retry with the same key replays the result.",
    )
    async def pay(self, info: Info, input: PayInput) -> PaymentPayload:
        data = {
            "store_id": input.store_id,
            "amount": input.amount,
            "idempotency_key": input.idempotency_key,
            "card_id": input.card_id,
            "payment_code": input.payment_code,
            "card_uid": input.card_uid,
            "pin": input.pin,
            "coupon_ids": [str(c) for c in input.coupon_ids or []],
        }
        return await mutate(
            info,
            PaymentPayload,
            resolve.pay(info.context, data),
            lambda p: {"payment": Payment.from_model(p)},
        )

    @strawberry.mutation(
        extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL),
        description="Redeem sessions of a session card (次卡核销); the result is a payment of"
        " the money those sessions used up. A retry with the same key replays it.",
    )
    async def session_redeem(self, info: Info, input: SessionRedeemInput) -> PaymentPayload:
        data = {
            "store_id": input.store_id,
            "sessions": input.sessions,
            "idempotency_key": input.idempotency_key,
            "card_id": input.card_id,
            "payment_code": input.payment_code,
            "card_uid": input.card_uid,
            "pin": input.pin,
        }
        return await mutate(
            info,
            PaymentPayload,
            resolve.session_redeem(info.context, data),
            lambda p: {"payment": Payment.from_model(p)},
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="预授权: set money aside on a card for a later capture at this store.",
    )
    async def card_hold(self, info: Info, input: CardHoldInput) -> HoldPayload:
        data = {
            "store_id": input.store_id,
            "amount": input.amount,
            "idempotency_key": input.idempotency_key,
            "card_id": input.card_id,
            "payment_code": input.payment_code,
            "card_uid": input.card_uid,
            "pin": input.pin,
            "expires_in_seconds": input.expires_in_seconds,
            "reference": input.reference,
        }
        return await mutate(
            info, HoldPayload, resolve.hold_create(info.context, data), _hold_payload
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="Capture part or all of a pending hold as a payment; the rest goes back.",
    )
    async def hold_capture(self, info: Info, input: HoldCaptureInput) -> HoldPayload:
        return await mutate(
            info,
            HoldPayload,
            resolve.hold_capture(info.context, input.hold_id, input.amount, input.idempotency_key),
            _hold_payload,
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="Give a pending hold's money back to the card; releasing twice is harmless.",
    )
    async def hold_release(self, info: Info, input: HoldIdInput) -> HoldPayload:
        return await mutate(
            info, HoldPayload, resolve.hold_release(info.context, input.hold_id), _hold_payload
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="Partial or full; the total never exceeds the payment.",
    )
    async def refund(self, info: Info, input: RefundInput) -> RefundPayload:
        data = {
            "payment_id": input.payment_id,
            "amount": input.amount,
            "reason": input.reason,
            "idempotency_key": input.idempotency_key,
        }
        return await mutate(
            info,
            RefundPayload,
            resolve.refund(info.context, data),
            lambda r: {"refund": Refund.from_model(r)},
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="Same-day full reversal (撤销), once only.",
    )
    async def payment_void(self, info: Info, input: PaymentVoidInput) -> RefundPayload:
        return await mutate(
            info,
            RefundPayload,
            resolve.void(info.context, input.payment_id, input.reason, input.idempotency_key),
            lambda r: {"refund": Refund.from_model(r)},
        )


def _hold_payload(h: models.Hold) -> dict[str, object]:
    return {"hold": Hold.from_model(h)}


@strawberry.type
class PaymentQuery:
    @strawberry.field(extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL, R.OPERATOR))
    async def payment(self, info: Info, id: strawberry.ID) -> Payment | None:
        row = await resolve.payment(info.context, id)
        return Payment.from_model(row) if row else None

    @strawberry.field(extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL, R.OPERATOR))
    async def hold(self, info: Info, id: strawberry.ID) -> Hold | None:
        row = await resolve.hold(info.context, id)
        return Hold.from_model(row) if row else None

    @strawberry.field(
        extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL, R.OPERATOR),
        description="A top-up, e.g. to watch an online one turn SUCCEEDED.",
    )
    async def top_up_by_id(self, info: Info, id: strawberry.ID) -> TopUp | None:
        row = await resolve.top_up_by_id(info.context, id)
        return TopUp.from_model(row) if row else None
