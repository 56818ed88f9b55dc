"""The outbox relay: publishes committed events to the broker, in order, at least once."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from app.broker import Broker
from domain.outbox.service import relay_batch

log = structlog.get_logger(__name__)


class OutboxRelay:
    """One task per process. A commit that wrote an event kicks it at once (subscribers hear a
    change as soon as it is committed); under load the commits made while a batch is in flight
    go out together in the next one. It also polls every `idle_poll_seconds` for rows nobody
    kicked it for (another process, a crash)."""

    def __init__(
        self, broker: Broker, idle_poll_seconds: float = 1.0, batch_size: int = 200
    ) -> None:
        self.broker = broker
        self.idle_poll_seconds = idle_poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Finish the batch in hand (never cancel inside a database transaction), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def drain(self) -> int:
        """Publish until a batch comes back short: whatever commits after that kicks again."""
        total = 0
        while not self._stopping:
            n = await relay_batch(self.broker.publish_many, self.batch_size)
            total += n
            if n < self.batch_size:
                break
        return total

    async def _run(self) -> None:
        # Unpublished rows from before a crash go out first.
        while not self._stopping:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # database or broker blip: retry after the poll interval
                log.exception("outbox relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
