"""Merchants, stores, staff, terminals and officials."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from domain.actor import Role, region_prefix
from domain.errors import forbidden
from domain.identity import service as identity
from domain.identity.models import User
from domain.merchants import service as merchants
from domain.merchants.models import Merchant, Store, Terminal
from resolvers.context import Context
from resolvers.pagination import Page, paginate
from resolvers.permissions import require_merchant_access


async def merchant_create(ctx: Context, data: dict[str, Any]) -> Merchant:
    return await merchants.create_merchant(ctx.require_viewer(), **data)


async def store_create(ctx: Context, merchant_id: str, name: str, region_code: str | None) -> Store:
    return await merchants.create_store(ctx.require_viewer(), merchant_id, name, region_code)


async def staff_create(
    ctx: Context,
    merchant_id: str,
    username: str,
    password: str,
    role: str,
    store_ids: list[str] | None,
) -> User:
    return await merchants.create_staff(
        ctx.require_viewer(), merchant_id, username, password, role, store_ids
    )


async def terminal_register(ctx: Context, store_id: str, name: str) -> merchants.RegisteredTerminal:
    return await merchants.register_terminal(ctx.require_viewer(), store_id, name)


async def official_create(ctx: Context, data: dict[str, Any]) -> User:
    return await identity.create_official(ctx.require_viewer(), **data)


async def merchant(ctx: Context, merchant_id: str) -> Merchant | None:
    viewer = ctx.require_viewer()
    row = await merchants_loader(ctx).load(merchant_id)
    if row is None:
        return None
    require_merchant_access(viewer, row.id, row.region_code)
    return row


async def merchant_list(ctx: Context, first: int | None, after: str | None) -> Page[Merchant]:
    viewer = ctx.require_viewer()
    query = Merchant.all()
    if viewer.role in (Role.REGULATOR, Role.CUSTODIAN):
        # Regulators see merchants in their region.
        query = query.filter(region_code__startswith=region_prefix(viewer.region_code) or "-")
    elif viewer.role != Role.OPERATOR:
        raise forbidden()
    return await paginate(query, first, after, ctx.max_page_size)


async def stores_of(ctx: Context, merchant_id: str) -> list[Store]:
    loader: DataLoader[str, list[Store]] = ctx.loaders.get("stores_by_merchant") or DataLoader(
        load_fn=_load_stores
    )
    ctx.loaders["stores_by_merchant"] = loader
    return await loader.load(merchant_id)


async def _load_stores(merchant_ids: list[str]) -> list[list[Store]]:
    rows = await Store.filter(merchant_id__in=merchant_ids).order_by("id")
    by: dict[str, list[Store]] = {m: [] for m in merchant_ids}
    for row in rows:
        by[row.merchant_id].append(row)
    return [by[m] for m in merchant_ids]


def merchants_loader(ctx: Context) -> DataLoader[str, Merchant | None]:
    loader = ctx.loaders.get("merchant")
    if loader is None:
        loader = DataLoader(load_fn=_load_merchants)
        ctx.loaders["merchant"] = loader
    return loader  # type: ignore[no-any-return,unused-ignore]


async def _load_merchants(ids: list[str]) -> list[Merchant | None]:
    rows = {m.id: m for m in await Merchant.filter(id__in=ids)}
    return [rows.get(i) for i in ids]


async def merchant_of(ctx: Context, merchant_id: str) -> Merchant | None:
    return await merchants_loader(ctx).load(merchant_id)


async def viewer_user(ctx: Context) -> User | None:
    viewer = ctx.require_viewer()
    if viewer.role == Role.TERMINAL:
        return None
    return await User.get_or_none(id=viewer.id)


async def viewer_terminal(ctx: Context) -> Terminal | None:
    viewer = ctx.require_viewer()
    if viewer.role != Role.TERMINAL:
        return None
    return await Terminal.get_or_none(id=viewer.id)
