"""The counter desk: input -> domain call."""

from __future__ import annotations

from domain.counter import service as counter
from domain.counter.models import Shift
from domain.counter.service import DayReport
from resolvers.context import Context


async def shift_open(ctx: Context, store_id: str, opening_float: int) -> Shift:
    return await counter.open_shift(
        ctx.require_viewer(), store_id=store_id, opening_float=opening_float
    )


async def shift_close(ctx: Context, shift_id: str, counted_cash: int) -> Shift:
    return await counter.close_shift(
        ctx.require_viewer(), shift_id=shift_id, counted_cash=counted_cash
    )


async def day_close(ctx: Context, store_id: str, day: str | None) -> DayReport:
    return await counter.close_day(ctx.require_viewer(), store_id=store_id, business_day=day)


async def day_report(ctx: Context, store_id: str, day: str | None) -> DayReport:
    return await counter.day_report(ctx.require_viewer(), store_id=store_id, business_day=day)
