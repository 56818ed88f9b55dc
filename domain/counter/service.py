"""The counter desk (柜面): every counter transaction belongs to a staff member, a shift and a
business day of its store; the daily close (日结) totals the day and locks it.

A counter transaction is recorded inside the transaction of its money movement, so the books
of the counter and the ledger cannot disagree. A staff member's first counter transaction opens
their shift if they did not open one (with an empty float). Once a store's day is closed, new
counter transactions (corrections included) belong to the next business day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from domain import clock
from domain.actor import STAFF_ROLES, Actor, Role
from domain.audit import service as audit
from domain.counter.models import CounterEntry, DailyClose, Shift
from domain.db import connection, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.ids import has_prefix, new_id
from domain.merchants.service import get_store
from domain.sql import fetch

COUNTER_ROLES = (*STAFF_ROLES, Role.TERMINAL)
MAX_DAYS_AHEAD = 31


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def store_for(actor: Actor, merchant_id: str, store_id: str | None) -> str:
    """The store a counter transaction happens at: the one named, or the staff's own."""
    if store_id is None:
        if len(actor.store_ids) != 1:
            raise invalid_input("storeId", "请选择门店", "Name the store of this counter sale")
        store_id = actor.store_ids[0]
    return _checked_store(actor, merchant_id, store_id)


def _checked_store(actor: Actor, merchant_id: str, store_id: str) -> str:
    if not actor.can_act_at_store(merchant_id, store_id):
        raise forbidden("Not your store")
    return store_id


async def open_business_day(conn: BaseDBAsyncClient, store_id: str) -> str:
    """Today in Beijing, or the first day after it that the store has not closed."""
    day = clock.beijing_day()
    closed = {
        str(d)
        for d in await DailyClose.filter(store_id=store_id, business_day__gte=day)
        .using_db(conn)
        .values_list("business_day", flat=True)
    }
    for _ in range(MAX_DAYS_AHEAD):
        if day not in closed:
            return day
        day = _next_day(day)
    raise DomainError("DAY_CLOSED", "营业日均已日结", "Every business day ahead is closed")


async def current_shift(
    conn: BaseDBAsyncClient, actor: Actor, merchant_id: str, store_id: str, opening_float: int = 0
) -> Shift:
    """The actor's open shift at the store, opened now if there is none."""
    key = f"{actor.id}:{store_id}"
    found = await Shift.filter(open_key=key).using_db(conn).first()
    if found is not None:
        return found
    shift = Shift(
        id=new_id("shf"),
        merchant_id=merchant_id,
        store_id=store_id,
        staff_id=actor.id,
        business_day=await open_business_day(conn, store_id),
        status="OPEN",
        open_key=key,
        opening_float=opening_float,
        opened_at=clock.now(),
    )
    try:
        await shift.save(using_db=conn)
    except IntegrityError:
        # Opened concurrently by another request of the same staff member: use that one.
        raced = await Shift.filter(open_key=key).using_db(conn).first()
        if raced is None:
            raise
        return raced
    return shift


async def record(
    conn: BaseDBAsyncClient,
    actor: Actor,
    *,
    merchant_id: str,
    store_id: str | None,
    kind: str,
    channel: str,
    amount: int,
    cash: int,
    reference: str,
    at_counter_only: bool = False,
) -> None:
    """Write one counter transaction (staff and terminals only; operators are not a counter).

    Money taken at the counter (cash, bank card) needs its store. `at_counter_only`: the
    action may also happen away from any counter (an admin approving a refund, replacing a
    card from the back office); it is recorded only when done at a store.
    """
    if actor.role not in COUNTER_ROLES:
        return
    if at_counter_only and store_id is None and len(actor.store_ids) != 1:
        return
    store_id = store_for(actor, merchant_id, store_id)
    shift = await current_shift(conn, actor, merchant_id, store_id)
    await CounterEntry.create(
        using_db=conn,
        id=new_id("cte"),
        merchant_id=merchant_id,
        store_id=store_id,
        staff_id=actor.id,
        shift_id=shift.id,
        business_day=await open_business_day(conn, store_id),
        kind=kind,
        channel=channel,
        amount=amount,
        cash=cash,
        reference=reference,
        created_at=clock.now(),
    )


# --- shifts -------------------------------------------------------------------------------------


def _check_cash(amount: int, field: str) -> None:
    if not 0 <= amount <= 10**10:
        raise invalid_input(field, "金额须为非负整数（分）", "Give a non-negative number of fen")


async def open_shift(actor: Actor, *, store_id: str, opening_float: int) -> Shift:
    if actor.role not in COUNTER_ROLES:
        raise forbidden()
    _check_cash(opening_float, "openingFloat")
    store = await get_store(store_id)
    store_for(actor, store.merchant_id, store.id)
    async with transaction() as conn:
        if await Shift.filter(open_key=f"{actor.id}:{store.id}").using_db(conn).exists():
            raise DomainError(
                "SHIFT_ALREADY_OPEN", "已有未结束的班次", "You already have an open shift here"
            )
        return await current_shift(conn, actor, store.merchant_id, store.id, opening_float)


async def _shift_cash(conn: BaseDBAsyncClient, shift: Shift) -> int:
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(cash), 0) AS cash FROM counter_entries WHERE shift_id = $1",
        shift.id,
    )
    return int(shift.opening_float) + int(rows[0]["cash"])


async def close_shift(actor: Actor, *, shift_id: str, counted_cash: int) -> Shift:
    """交班: the drawer counted against what it should hold; the shift takes no more entries."""
    _check_cash(counted_cash, "countedCash")
    shift = await Shift.get_or_none(id=shift_id) if has_prefix(shift_id, "shf") else None
    if shift is None or not (shift.staff_id == actor.id or actor.is_admin_of(shift.merchant_id)):
        raise DomainError("NOT_FOUND", "班次不存在", "Shift not found", "shiftId")
    async with transaction() as conn:
        expected = await _shift_cash(conn, shift)
        closed = (
            await Shift.filter(id=shift.id, status="OPEN")
            .using_db(conn)
            .update(
                status="CLOSED",
                open_key=None,
                expected_cash=expected,
                counted_cash=counted_cash,
                closed_at=clock.now(),
            )
        )
        if not closed:
            raise DomainError(
                "SHIFT_CLOSED", "班次已结束", "The shift is already closed", "shiftId"
            )
        await audit.record(
            conn, actor, "shiftClose", shift.id, {"expected": expected, "counted": counted_cash}
        )
    return await Shift.get(id=shift.id)


# --- the daily close ----------------------------------------------------------------------------


async def day_totals(conn: BaseDBAsyncClient, store_id: str, day: str) -> list[dict[str, Any]]:
    """Counter transactions of a store's day by type and channel, plus per staff member."""
    rows = await fetch(
        conn,
        "SELECT kind, channel, staff_id, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount,"
        " COALESCE(SUM(cash), 0) AS cash FROM counter_entries"
        " WHERE store_id = $1 AND business_day = $2 GROUP BY kind, channel, staff_id"
        " ORDER BY kind, channel, staff_id",
        store_id,
        day,
    )
    return [
        {
            "kind": str(r["kind"]),
            "channel": str(r["channel"]),
            "staffId": str(r["staff_id"]),
            "count": int(r["n"]),
            "amount": int(r["amount"]),
            "cash": int(r["cash"]),
        }
        for r in rows
    ]


async def expected_drawer(conn: BaseDBAsyncClient, store_id: str, day: str) -> int:
    """Opening floats of the day's shifts plus the cash the day's transactions moved."""
    floats = await fetch(
        conn,
        "SELECT COALESCE(SUM(opening_float), 0) AS f FROM counter_shifts"
        " WHERE store_id = $1 AND business_day = $2",
        store_id,
        day,
    )
    cash = await fetch(
        conn,
        "SELECT COALESCE(SUM(cash), 0) AS c FROM counter_entries"
        " WHERE store_id = $1 AND business_day = $2",
        store_id,
        day,
    )
    return int(floats[0]["f"]) + int(cash[0]["c"])


def _may_close(actor: Actor, merchant_id: str, store_id: str) -> bool:
    return actor.role in STAFF_ROLES and actor.can_act_at_store(merchant_id, store_id)


async def close_day(actor: Actor, *, store_id: str, business_day: str | None) -> DayReport:
    """日结: total the store's open business day and lock it. Shifts of the day must be closed."""
    store = await get_store(store_id)
    if not _may_close(actor, store.merchant_id, store.id):
        raise forbidden("Not your store")
    async with transaction() as conn:
        day = business_day or await open_business_day(conn, store.id)
        _valid_day(day)
        still_open = (
            await Shift.filter(store_id=store.id, business_day=day, status="OPEN")
            .using_db(conn)
            .count()
        )
        if still_open:
            raise DomainError(
                "SHIFT_STILL_OPEN",
                f"还有 {still_open} 个班次未交班",
                f"{still_open} shift(s) of the day are still open",
                "storeId",
            )
        closing = DailyClose(
            id=new_id("dcl"),
            merchant_id=store.merchant_id,
            store_id=store.id,
            business_day=day,
            totals=await day_totals(conn, store.id, day),
            expected_cash=await expected_drawer(conn, store.id, day),
            closed_by=actor.id,
            closed_at=clock.now(),
        )
        try:
            await closing.save(using_db=conn)
        except IntegrityError as exc:
            raise DomainError(
                "DAY_CLOSED", "该营业日已日结", "This business day is already closed", "businessDay"
            ) from exc
        await audit.record(conn, actor, "dailyClose", store.id, {"day": day})
    return DayReport.of(closing)


def _valid_day(day: str) -> None:
    try:
        date.fromisoformat(day)
    except ValueError as exc:
        raise invalid_input("businessDay", "日期格式应为 YYYY-MM-DD", "Use YYYY-MM-DD") from exc


@dataclass(frozen=True)
class DayReport:
    """A business day of a store: its locked close, or a live preview."""

    store_id: str
    business_day: str
    closed: bool
    closed_at: datetime | None
    closed_by: str | None
    expected_cash: int
    totals: list[dict[str, Any]]

    @classmethod
    def of(cls, close: DailyClose) -> DayReport:
        return cls(
            store_id=close.store_id,
            business_day=close.business_day,
            closed=True,
            closed_at=close.closed_at,
            closed_by=close.closed_by,
            expected_cash=close.expected_cash,
            totals=list(close.totals or []),
        )


async def day_report(actor: Actor, *, store_id: str, business_day: str | None) -> DayReport:
    """The day's close if locked, else a live preview of it (not saved)."""
    store = await get_store(store_id)
    if not _may_close(actor, store.merchant_id, store.id):
        raise forbidden("Not your store")
    conn = connection()
    day = business_day or await open_business_day(conn, store.id)
    _valid_day(day)
    closed = await DailyClose.get_or_none(store_id=store.id, business_day=day)
    if closed is not None:
        return DayReport.of(closed)
    return DayReport(
        store_id=store.id,
        business_day=day,
        closed=False,
        closed_at=None,
        closed_by=None,
        expected_cash=await expected_drawer(conn, store.id, day),
        totals=await day_totals(conn, store.id, day),
    )
