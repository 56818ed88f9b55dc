"""Deadlines judged by the database clock: expire holds and unpaid online top-ups; release
consumed escrow of full-custody merchants; the daily escrow check (required vs held).

Runs inside `yikatong serve` until the worker (`yikatong worker`) takes scheduled jobs over.
Every sweep is a set of conditional updates, so several processes sweeping at once is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from domain import clock
from domain.escrow import service as escrow
from domain.members import accrual, expiry, tiers
from domain.payments import holds, topups

log = structlog.get_logger(__name__)


async def sweep() -> dict[str, int]:
    return {
        "holds": await holds.expire_due(),
        "topUps": await topups.expire_due(),
        "escrowReleases": await escrow.release_consumed(),
        # Members and points: earn for new payments (and take back for refunds), then let
        # pending points mature, expire old lots and end tier periods.
        "pointsAccrued": await accrual.accrue_points(),
        "pointsMatured": await expiry.mature_due(),
        "pointsExpired": await expiry.expire_due(),
        "tiersReviewed": await tiers.review_due(),
    }


class ExpirySweeper:
    def __init__(self, interval_seconds: float = 30.0) -> None:
        self.interval_seconds = interval_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checked_day: str | None = None

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="expiry-sweeper")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let a sweep in progress finish (each expiry is its own transaction), then stop."""
        if self._task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = await sweep()
                if any(done.values()):
                    log.info("swept", **done)
                today = clock.beijing_day()
                if today != self._checked_day:
                    short = await escrow.daily_check(today)
                    self._checked_day = today
                    log.info("escrow checked", day=today, short=len(short))
            except Exception:  # a database blip: try again next round
                log.exception("expiry sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_seconds)
