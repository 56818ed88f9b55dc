"""Cursor pagination over time-ordered ids, newest first, with a bounded page size."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.queryset import QuerySet

from domain.errors import invalid_input

T = TypeVar("T")
DEFAULT_PAGE = 20


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith("v1:"):
        raise invalid_input("after", "游标无效", "Invalid cursor")
    return raw[3:]


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE, maximum)
    if first < 1 or first > maximum:
        raise invalid_input(
            "first", f"每页数量须在 1-{maximum} 之间", f"first must be between 1 and {maximum}"
        )
    return first


async def paginate(
    query: QuerySet[Any], first: int | None, after: str | None, maximum: int
) -> Page[Any]:
    size = page_size(first, maximum)
    if after:
        query = query.filter(id__lt=decode_cursor(after))
    rows = await query.order_by("-id").limit(size + 1)
    items = rows[:size]
    return Page(
        items=items, cursors=[encode_cursor(r.id) for r in items], has_next_page=len(rows) > size
    )
