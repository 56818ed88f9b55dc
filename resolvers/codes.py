"""Payment codes, offline-code devices and merchant codes: input -> domain call."""

from __future__ import annotations

from domain.codes import merchant, offline, qr
from domain.codes import service as codes
from domain.codes.models import PaymentCodeDevice
from domain.errors import DomainError
from resolvers.context import Context


async def payment_code_create(ctx: Context, card_id: str) -> codes.IssuedCode:
    return await codes.create(ctx.require_viewer(), card_id)


async def device_register(ctx: Context, card_id: str, name: str) -> tuple[PaymentCodeDevice, str]:
    return await offline.register(ctx.require_viewer(), card_id, name)


async def device_revoke(ctx: Context, device_id: str) -> PaymentCodeDevice:
    return await offline.revoke(ctx.require_viewer(), device_id)


async def devices(ctx: Context, card_id: str) -> list[PaymentCodeDevice]:
    try:
        return await offline.devices_of(ctx.require_viewer(), card_id)
    except DomainError:
        return []


async def store_code(ctx: Context, store_id: str) -> merchant.MerchantCode | None:
    try:
        return await merchant.static_code(ctx.require_viewer(), store_id)
    except DomainError:
        return None


async def order_code(
    ctx: Context, store_id: str, amount: int, reference: str | None, expires_in: int | None
) -> merchant.MerchantCode:
    return await merchant.dynamic_code(
        ctx.require_viewer(), store_id, amount, reference, expires_in
    )


async def resolve(ctx: Context, payload: str) -> merchant.MerchantCode:
    ctx.require_viewer()
    return await merchant.resolve(payload)


def device_code_prefix(device: PaymentCodeDevice) -> str:
    return offline.code_prefix(device.serial)


def provisioning_uri(device: PaymentCodeDevice, secret: str) -> str:
    return offline.provisioning_uri(device, secret)


def qr_svg(payload: str, scale: int) -> str:
    return qr.svg(payload, scale)
