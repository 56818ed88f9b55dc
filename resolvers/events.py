"""Live events for the viewer, fed by the broker (which the outbox relay feeds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from resolvers.context import Context


async def viewer_events(ctx: Context) -> AsyncIterator[dict[str, Any]]:
    viewer = ctx.require_viewer()
    async for message in ctx.broker.subscribe(f"user:{viewer.id}"):
        yield message
