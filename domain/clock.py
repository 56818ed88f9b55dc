"""The one clock of the domain, so tests (and the worker) can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
_offset = timedelta(0)


def now() -> datetime:
    return _now() + _offset


def offset() -> timedelta:
    """How far tests have moved the clock (zero in production)."""
    return _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


BEIJING_TIME = timedelta(hours=8)


def beijing_day(at: datetime | None = None) -> str:
    """The business day (YYYY-MM-DD) in China Standard Time, which has no daylight saving."""
    return ((at or now()).astimezone(UTC) + BEIJING_TIME).date().isoformat()
