"""Merchants, stores, staff, terminals and officials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.identity.models import User
from domain.merchants import models
from domain.merchants.service import RegisteredTerminal
from resolvers import merchants as resolve
from schema.common import Connection
from schema.errors import UserError, mutate
from schema.permissions import allow

R = Role


@strawberry.type(description="A store (门店) of a merchant.")
class Store:
    id: strawberry.ID
    name: str
    region_code: str
    status: str
    merchant_id: strawberry.ID
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.Store) -> Store:
        return cls(
            id=strawberry.ID(m.id),
            name=m.name,
            region_code=m.region_code,
            status=m.status,
            merchant_id=strawberry.ID(m.merchant_id),
            created_at=m.created_at,
        )


@strawberry.type(description="A merchant (发卡企业) issuing prepaid cards.")
class Merchant:
    id: strawberry.ID
    name: str
    region_code: str
    industry: str
    issuer_class: str | None
    status: str
    created_at: datetime

    @strawberry.field
    async def stores(self, info: Info) -> list[Store]:
        return [Store.from_model(s) for s in await resolve.stores_of(info.context, self.id)]

    @classmethod
    def from_model(cls, m: models.Merchant) -> Merchant:
        return cls(
            id=strawberry.ID(m.id),
            name=m.name,
            region_code=m.region_code,
            industry=m.industry,
            issuer_class=m.issuer_class,
            status=m.status,
            created_at=m.created_at,
        )


@strawberry.type(description="A staff account of a merchant.")
class Staff:
    id: strawberry.ID
    username: str
    role: str
    merchant_id: strawberry.ID
    store_ids: list[strawberry.ID]

    @classmethod
    def from_model(cls, u: User) -> Staff:
        return cls(
            id=strawberry.ID(u.id),
            username=u.username or "",
            role=u.role,
            merchant_id=strawberry.ID(u.merchant_id or ""),
            store_ids=[strawberry.ID(s) for s in u.store_ids or []],
        )


@strawberry.type(description="A regulator (商务局/市场监管局) or custodian bank (存管银行) user.")
class Official:
    id: strawberry.ID
    username: str
    role: str
    organisation: str
    region_code: str

    @classmethod
    def from_model(cls, u: User) -> Official:
        return cls(
            id=strawberry.ID(u.id),
            username=u.username or "",
            role=u.role,
            organisation=u.organisation or "",
            region_code=u.region_code or "",
        )


@strawberry.type(description="A POS tablet or card reader of one store.")
class Terminal:
    id: strawberry.ID
    name: str
    store_id: strawberry.ID
    merchant_id: strawberry.ID
    last_seen_at: datetime | None
    revoked: bool
    revoked_at: datetime | None
    heartbeat_at: datetime | None = strawberry.field(description="Its last terminalHeartbeat.")
    app_version: str | None
    reader_status: str | None = strawberry.field(description="As of its last heartbeat.")
    key_rotated_at: datetime | None

    @classmethod
    def from_model(cls, t: models.Terminal) -> Terminal:
        return cls(
            id=strawberry.ID(t.id),
            name=t.name,
            store_id=strawberry.ID(t.store_id),
            merchant_id=strawberry.ID(t.merchant_id),
            last_seen_at=t.last_seen_at,
            revoked=t.revoked_at is not None,
            revoked_at=t.revoked_at,
            heartbeat_at=t.heartbeat_at,
            app_version=t.app_version,
            reader_status=t.reader_status,
            key_rotated_at=t.key_rotated_at,
        )


@strawberry.input
class MerchantCreateInput:
    name: str
    region_code: str
    industry: str
    admin_username: str
    admin_password: str
    issuer_class: str | None = None


@strawberry.input
class StoreCreateInput:
    merchant_id: strawberry.ID
    name: str
    region_code: str | None = None


@strawberry.input
class StaffCreateInput:
    merchant_id: strawberry.ID
    username: str
    password: str
    role: str
    store_ids: list[strawberry.ID] | None = None


@strawberry.input
class TerminalRegisterInput:
    store_id: strawberry.ID
    name: str


@strawberry.input
class OfficialCreateInput:
    username: str
    password: str
    role: str
    organisation: str
    region_code: str


@strawberry.type
class MerchantPayload:
    merchant: Merchant | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StorePayload:
    store: Store | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StaffPayload:
    staff: Staff | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TerminalPayload:
    terminal: Terminal | None = None
    terminal_key: str | None = strawberry.field(
        default=None, description="Shown once; only its hash is stored."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OfficialPayload:
    official: Official | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _terminal(r: RegisteredTerminal) -> dict[str, Any]:
    return {"terminal": Terminal.from_model(r.terminal), "terminal_key": r.key}


@strawberry.type
class MerchantMutation:
    @strawberry.mutation(
        extensions=allow(R.OPERATOR), description="Onboard a merchant and its first admin."
    )
    async def merchant_create(self, info: Info, input: MerchantCreateInput) -> MerchantPayload:
        data = {
            "name": input.name,
            "region_code": input.region_code,
            "industry": input.industry,
            "issuer_class": input.issuer_class,
            "admin_username": input.admin_username,
            "admin_password": input.admin_password,
        }
        return await mutate(
            info,
            MerchantPayload,
            resolve.merchant_create(info.context, data),
            lambda m: {"merchant": Merchant.from_model(m)},
        )

    @strawberry.mutation(extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR))
    async def store_create(self, info: Info, input: StoreCreateInput) -> StorePayload:
        return await mutate(
            info,
            StorePayload,
            resolve.store_create(info.context, input.merchant_id, input.name, input.region_code),
            lambda s: {"store": Store.from_model(s)},
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR),
        description="Role MERCHANT_ADMIN or MERCHANT_STAFF; staff may be limited to stores.",
    )
    async def staff_create(self, info: Info, input: StaffCreateInput) -> StaffPayload:
        return await mutate(
            info,
            StaffPayload,
            resolve.staff_create(
                info.context,
                input.merchant_id,
                input.username,
                input.password,
                input.role,
                [str(s) for s in input.store_ids] if input.store_ids is not None else None,
            ),
            lambda u: {"staff": Staff.from_model(u)},
        )

    @strawberry.mutation(
        extensions=allow(R.MERCHANT_ADMIN, R.OPERATOR), description="Returns the terminal key once."
    )
    async def terminal_register(self, info: Info, input: TerminalRegisterInput) -> TerminalPayload:
        return await mutate(
            info,
            TerminalPayload,
            resolve.terminal_register(info.context, input.store_id, input.name),
            _terminal,
        )

    @strawberry.mutation(extensions=allow(R.OPERATOR), description="A REGULATOR or CUSTODIAN user.")
    async def official_create(self, info: Info, input: OfficialCreateInput) -> OfficialPayload:
        data = {
            "username": input.username,
            "password": input.password,
            "role": input.role,
            "organisation": input.organisation,
            "region_code": input.region_code,
        }
        return await mutate(
            info,
            OfficialPayload,
            resolve.official_create(info.context, data),
            lambda u: {"official": Official.from_model(u)},
        )


@strawberry.type
class MerchantQuery:
    @strawberry.field(
        extensions=allow(
            R.OPERATOR, R.REGULATOR, R.CUSTODIAN, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL
        ),
        description="A merchant the viewer may see: own staff, regional regulators, operators.",
    )
    async def merchant(self, info: Info, id: strawberry.ID) -> Merchant | None:
        row = await resolve.merchant(info.context, id)
        return Merchant.from_model(row) if row else None

    @strawberry.field(
        extensions=allow(R.OPERATOR, R.REGULATOR, R.CUSTODIAN),
        description="Merchants newest first; regulators see their region.",
    )
    async def merchants(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Merchant]:
        page = await resolve.merchant_list(info.context, first, after)
        return Connection.of(page, Merchant.from_model)
