"""Transactions and dialect helpers shared by the domain areas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from domain import clock, config


def connection() -> BaseDBAsyncClient:
    return get_connection("default")


def dialect() -> str:
    return str(connection().capabilities.dialect)


def is_postgres() -> bool:
    return dialect() == "postgres"


_emitted: ContextVar[bool] = ContextVar("outbox_emitted", default=False)


def mark_emitted() -> None:
    """Called by the outbox when it writes an event in the current transaction."""
    _emitted.set(True)


@asynccontextmanager
async def transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """One database transaction; outbox events written inside are published after commit."""
    token = _emitted.set(False)
    try:
        async with in_transaction("default") as conn:
            yield conn
        emitted = _emitted.get()
    finally:
        _emitted.reset(token)
    events = config.get().events
    if emitted and events is not None:
        events.kick()


async def db_now(conn: BaseDBAsyncClient) -> datetime:
    """The database's clock (plus the test offset of `domain.clock`).

    Deadlines that several servers enforce (hold expiry) are judged by one clock, the
    database's, not by each server's. SQLite is in-process, so its clock is ours.
    """
    if conn.capabilities.dialect != "postgres":
        return clock.now()
    rows = await conn.execute_query_dict("SELECT CURRENT_TIMESTAMP AS now")
    now: datetime = rows[0]["now"]
    return now + clock.offset()
