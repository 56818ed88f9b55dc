"""Transactions and dialect helpers shared by the domain areas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """One database transaction; outbox events written inside are published after commit."""
    async with in_transaction("default") as conn:
        yield conn
    events = config.get().events
    if events is not None:
        events.kick()
