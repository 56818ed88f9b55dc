"""Payment codes (付款码: online, and offline from a provisioned device) and merchant-presented
EMVCo codes (a store's static code, an order's dynamic code), with their QR images."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.codes import merchant, offline
from domain.codes.models import PaymentCodeDevice as DeviceModel
from domain.codes.service import IssuedCode
from resolvers import codes as resolve
from schema.errors import UserError, mutate
from schema.merchants import Store
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


@strawberry.type(description="A device (phone) that derives offline payment codes for a card.")
class PaymentCodeDevice:
    id: strawberry.ID
    name: str
    card_id: strawberry.ID
    code_prefix: str = strawberry.field(
        description="The first 10 digits of every code of this device (prefix + device block)."
    )
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_model(cls, d: DeviceModel) -> PaymentCodeDevice:
        return cls(
            id=strawberry.ID(d.id),
            name=d.name,
            card_id=strawberry.ID(d.card_id),
            code_prefix=resolve.device_code_prefix(d),
            created_at=d.created_at,
            revoked_at=d.revoked_at,
            last_used_at=d.last_used_at,
        )


@strawberry.type(
    description="A merchant-presented EMVCo code: a store's static code (no amount) or an order's"
    " dynamic code (amount, reference, expiry), signed so it cannot be edited."
)
class MerchantCode:
    payload: str
    dynamic: bool
    amount: Fen | None
    reference: str | None
    expires_at: datetime | None
    store: Store
    image_path: str = strawberry.field(
        description="GET this path for a PNG of the QR code (replace .png with .svg for SVG)."
    )

    @strawberry.field(description="The QR code as an SVG document.")
    def svg(self, scale: int = 4) -> str:
        return resolve.qr_svg(self.payload, scale)

    @classmethod
    def from_domain(cls, c: merchant.MerchantCode) -> MerchantCode:
        return cls(
            payload=c.payload,
            dynamic=c.dynamic,
            amount=Fen(c.amount) if c.amount is not None else None,
            reference=c.reference,
            expires_at=c.expires_at,
            store=Store.from_model(c.store),
            image_path=f"/qr/{quote(c.payload, safe='')}.png",
        )


@strawberry.input
class PaymentCodeCreateInput:
    card_id: strawberry.ID


@strawberry.input
class PaymentCodeDeviceRegisterInput:
    card_id: strawberry.ID
    device_name: str


@strawberry.input
class PaymentCodeDeviceRevokeInput:
    device_id: strawberry.ID


@strawberry.input(description="An order's code: the consumer scans it and pays this amount.")
class MerchantCodeCreateInput:
    store_id: strawberry.ID
    amount: Fen
    reference: str | None = strawberry.field(
        default=None, description="The order reference, 1-25 of A-Z a-z 0-9 . _ - (generated)."
    )
    expires_in_seconds: int | None = strawberry.field(
        default=None, description="60-86400, default 900."
    )


@strawberry.input
class MerchantCodeResolveInput:
    payload: str


@strawberry.type
class PaymentCodePayload:
    code: str | None = strawberry.field(default=None, description="18 digits, single use.")
    qr_payload: str | None = strawberry.field(
        default=None, description="What the QR code carries (the code itself)."
    )
    expires_at: datetime | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentCodeDeviceRegisterPayload:
    device: PaymentCodeDevice | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="The TOTP secret (base32), shown this once: keep it on the device.",
    )
    provisioning_uri: str | None = strawberry.field(default=None, description="otpauth:// URI.")
    digits: int | None = strawberry.field(default=None, description="TOTP digits (8).")
    period: int | None = strawberry.field(default=None, description="TOTP step, seconds (30).")
    algorithm: str | None = strawberry.field(default=None, description="TOTP HMAC (SHA1).")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentCodeDevicePayload:
    device: PaymentCodeDevice | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MerchantCodeCreatePayload:
    merchant_code: MerchantCode | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="What a scanned merchant code asks for; then call `pay`.")
class MerchantCodePayload:
    store: Store | None = None
    amount: Fen | None = strawberry.field(default=None, description="Order codes only.")
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="The order reference (order codes only)."
    )
    expires_at: datetime | None = None
    dynamic: bool | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _issued(c: IssuedCode) -> dict[str, object]:
    return {"code": c.code, "qr_payload": c.code, "expires_at": c.expires_at}


def _registered(result: tuple[DeviceModel, str]) -> dict[str, object]:
    device, secret = result
    return {
        "device": PaymentCodeDevice.from_model(device),
        "secret": secret,
        "provisioning_uri": resolve.provisioning_uri(device, secret),
        "digits": offline.DIGITS,
        "period": offline.PERIOD,
        "algorithm": offline.ALGORITHM,
    }


def _resolved(c: merchant.MerchantCode) -> dict[str, object]:
    return {
        "store": Store.from_model(c.store),
        "amount": Fen(c.amount) if c.amount is not None else None,
        "order_id": strawberry.ID(c.reference) if c.reference else None,
        "expires_at": c.expires_at,
        "dynamic": c.dynamic,
    }


@strawberry.type
class CodeMutation:
    @strawberry.mutation(
        extensions=allow(R.CONSUMER),
        description="付款码: an 18-digit code for the holder's card, single use, 60 seconds.",
    )
    async def payment_code_create(
        self, info: Info, input: PaymentCodeCreateInput
    ) -> PaymentCodePayload:
        return await mutate(
            info,
            PaymentCodePayload,
            resolve.payment_code_create(info.context, input.card_id),
            _issued,
        )

    @strawberry.mutation(
        extensions=allow(R.CONSUMER),
        description="Provision this phone to derive offline payment codes for the holder's card.",
    )
    async def payment_code_device_register(
        self, info: Info, input: PaymentCodeDeviceRegisterInput
    ) -> PaymentCodeDeviceRegisterPayload:
        return await mutate(
            info,
            PaymentCodeDeviceRegisterPayload,
            resolve.device_register(info.context, input.card_id, input.device_name),
            _registered,
        )

    @strawberry.mutation(
        extensions=allow(R.CONSUMER, *STAFF, R.OPERATOR),
        description="Stop a device's offline codes at once (a lost phone); idempotent.",
    )
    async def payment_code_device_revoke(
        self, info: Info, input: PaymentCodeDeviceRevokeInput
    ) -> PaymentCodeDevicePayload:
        return await mutate(
            info,
            PaymentCodeDevicePayload,
            resolve.device_revoke(info.context, input.device_id),
            lambda d: {"device": PaymentCodeDevice.from_model(d)},
        )

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL),
        description="An order's EMVCo code (dynamic, signed, expiring) for the consumer to scan.",
    )
    async def merchant_code_create(
        self, info: Info, input: MerchantCodeCreateInput
    ) -> MerchantCodeCreatePayload:
        return await mutate(
            info,
            MerchantCodeCreatePayload,
            resolve.order_code(
                info.context,
                input.store_id,
                input.amount,
                input.reference,
                input.expires_in_seconds,
            ),
            lambda c: {"merchant_code": MerchantCode.from_domain(c)},
        )

    @strawberry.mutation(
        extensions=allow(R.CONSUMER, *STAFF, R.TERMINAL, R.OPERATOR),
        description="A scanned store or order code -> the store (and amount); CRC and signature"
        " are checked.",
    )
    async def merchant_code_resolve(
        self, info: Info, input: MerchantCodeResolveInput
    ) -> MerchantCodePayload:
        return await mutate(
            info, MerchantCodePayload, resolve.resolve(info.context, input.payload), _resolved
        )


@strawberry.type
class CodeQuery:
    @strawberry.field(
        extensions=allow(*STAFF, R.TERMINAL, R.OPERATOR),
        description="The store's static EMVCo code, to print at the counter.",
    )
    async def store_merchant_code(self, info: Info, store_id: strawberry.ID) -> MerchantCode | None:
        code = await resolve.store_code(info.context, store_id)
        return MerchantCode.from_domain(code) if code else None

    @strawberry.field(
        extensions=allow(R.CONSUMER, *STAFF, R.OPERATOR),
        description="The devices provisioned for offline codes of a card.",
    )
    async def payment_code_devices(
        self, info: Info, card_id: strawberry.ID
    ) -> list[PaymentCodeDevice]:
        return [
            PaymentCodeDevice.from_model(d) for d in await resolve.devices(info.context, card_id)
        ]
