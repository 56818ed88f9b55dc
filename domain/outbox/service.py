"""The transactional outbox: events are rows committed with the change; the relay publishes.

A crash between commit and publish loses nothing: unpublished rows are found again on restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.db import is_postgres, mark_emitted, transaction
from domain.outbox.models import OutboxEvent

Publish = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[None]]


async def emit(conn: BaseDBAsyncClient, channel: str, payload: dict[str, Any]) -> None:
    await OutboxEvent.create(
        using_db=conn, channel=channel, payload=payload, created_at=clock.now()
    )
    mark_emitted()


async def relay_batch(publish: Publish, limit: int = 200) -> int:
    """Publish one batch of unpublished events in order; returns how many.

    On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED so several relays share the
    work; each event is published at least once (subscribers de-duplicate by event id).
    """
    async with transaction() as conn:
        query = OutboxEvent.filter(published_at__isnull=True).order_by("id").limit(limit)
        if is_postgres():
            query = query.select_for_update(skip_locked=True)
        rows = await query.using_db(conn)
        if not rows:
            return 0
        await publish([(row.channel, {**row.payload, "eventId": row.id}) for row in rows])
        await (
            OutboxEvent.filter(id__in=[r.id for r in rows])
            .using_db(conn)
            .update(published_at=clock.now())
        )
    return len(rows)
