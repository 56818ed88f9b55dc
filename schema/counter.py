"""The counter desk (柜面): shifts (班次) and the daily close (日结)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.actor import Role
from domain.counter import models
from domain.counter.service import DayReport
from domain.errors import DomainError
from resolvers import counter as resolve
from schema.errors import UserError, mutate
from schema.permissions import allow
from schema.scalars import Fen

R = Role
STAFF = (R.MERCHANT_ADMIN, R.MERCHANT_STAFF)


@strawberry.type(description="A staff member's shift at a store and its cash drawer.")
class Shift:
    id: strawberry.ID
    store_id: strawberry.ID
    staff_id: strawberry.ID
    business_day: str
    status: str = strawberry.field(description="OPEN or CLOSED")
    opening_float: Fen
    expected_cash: Fen | None = strawberry.field(description="Set when the shift is closed.")
    counted_cash: Fen | None
    variance: Fen | None = strawberry.field(description="Counted minus expected.")
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_model(cls, s: models.Shift) -> Shift:
        expected = Fen(s.expected_cash) if s.expected_cash is not None else None
        counted = Fen(s.counted_cash) if s.counted_cash is not None else None
        return cls(
            id=strawberry.ID(s.id),
            store_id=strawberry.ID(s.store_id),
            staff_id=strawberry.ID(s.staff_id),
            business_day=s.business_day,
            status=s.status,
            opening_float=Fen(s.opening_float),
            expected_cash=expected,
            counted_cash=counted,
            variance=Fen(counted - expected)
            if counted is not None and expected is not None
            else None,
            opened_at=s.opened_at,
            closed_at=s.closed_at,
        )


@strawberry.type(description="Counter transactions of one type, channel and staff member.")
class DayTotal:
    kind: str = strawberry.field(
        description="CARD_SALE, TOP_UP, REFUND, VOID, REPLACE, CANCEL_REFUND"
    )
    channel: str = strawberry.field(description="CASH, BANK_CARD, CARD, NONE")
    staff_id: strawberry.ID
    count: int
    amount: Fen
    cash: Fen = strawberry.field(description="Effect on the cash drawer.")


@strawberry.type(description="日结: a store's business day; `closed` once locked.")
class DailyClose:
    store_id: strawberry.ID
    business_day: str
    closed: bool
    closed_at: datetime | None
    closed_by: strawberry.ID | None
    expected_cash: Fen = strawberry.field(description="Opening floats plus cash in minus out.")
    totals: list[DayTotal]

    @classmethod
    def from_model(cls, d: DayReport) -> DailyClose:
        return cls(
            store_id=strawberry.ID(d.store_id),
            business_day=d.business_day,
            closed=d.closed,
            closed_at=d.closed_at,
            closed_by=strawberry.ID(d.closed_by) if d.closed_by else None,
            expected_cash=Fen(d.expected_cash),
            totals=[
                DayTotal(
                    kind=t["kind"],
                    channel=t["channel"],
                    staff_id=strawberry.ID(t["staffId"]),
                    count=int(t["count"]),
                    amount=Fen(int(t["amount"])),
                    cash=Fen(int(t["cash"])),
                )
                for t in d.totals or []
            ],
        )


@strawberry.input
class ShiftOpenInput:
    store_id: strawberry.ID
    opening_float: Fen = strawberry.field(
        default_factory=lambda: Fen(0), description="Cash in the drawer at the start."
    )


@strawberry.input
class ShiftCloseInput:
    shift_id: strawberry.ID
    counted_cash: Fen


@strawberry.input
class DailyCloseInput:
    store_id: strawberry.ID
    business_day: str | None = strawberry.field(
        default=None, description="YYYY-MM-DD; the store's open business day when omitted."
    )


@strawberry.type
class ShiftPayload:
    shift: Shift | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DailyClosePayload:
    daily_close: DailyClose | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _shift(s: models.Shift) -> dict[str, Any]:
    return {"shift": Shift.from_model(s)}


@strawberry.type
class CounterMutation:
    @strawberry.mutation(extensions=allow(*STAFF, R.TERMINAL), description="开班")
    async def shift_open(self, info: Info, input: ShiftOpenInput) -> ShiftPayload:
        call = resolve.shift_open(info.context, input.store_id, input.opening_float)
        return await mutate(info, ShiftPayload, call, _shift)

    @strawberry.mutation(
        extensions=allow(*STAFF, R.TERMINAL), description="交班: count the drawer."
    )
    async def shift_close(self, info: Info, input: ShiftCloseInput) -> ShiftPayload:
        call = resolve.shift_close(info.context, input.shift_id, input.counted_cash)
        return await mutate(info, ShiftPayload, call, _shift)

    @strawberry.mutation(
        extensions=allow(*STAFF),
        description="日结: total and lock the store's business day; later corrections belong"
        " to the next day.",
    )
    async def daily_close(self, info: Info, input: DailyCloseInput) -> DailyClosePayload:
        call = resolve.day_close(info.context, input.store_id, input.business_day)
        return await mutate(
            info, DailyClosePayload, call, lambda d: {"daily_close": DailyClose.from_model(d)}
        )


@strawberry.type
class CounterQuery:
    @strawberry.field(
        extensions=allow(*STAFF),
        description="A business day of a store: the locked close, or a live preview.",
    )
    async def daily_close_report(
        self, info: Info, store_id: strawberry.ID, business_day: str | None = None
    ) -> DailyClose | None:
        try:
            found = await resolve.day_report(info.context, store_id, business_day)
        except DomainError:
            return None
        return DailyClose.from_model(found)
