"""Transactions and dialect helpers shared by the domain areas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from domain import config


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
