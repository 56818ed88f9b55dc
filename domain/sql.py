"""Raw SQL for the hot paths, written once in PostgreSQL's `$n` style and run on either backend."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def _for_sqlite(sql: str) -> str:
    # SQLite understands numbered parameters as ?NNN.
    return _PARAM.sub(r"?\1", sql)


async def fetch(conn: BaseDBAsyncClient, sql: str, *values: Any) -> list[dict[str, Any]]:
    if conn.capabilities.dialect != "postgres":
        sql = _for_sqlite(sql)
    # execute_query drops the rows of INSERT/UPDATE ... RETURNING on asyncpg; this keeps them.
    return await conn.execute_query_dict(sql, list(values))


async def execute(conn: BaseDBAsyncClient, sql: str, *values: Any) -> int:
    if conn.capabilities.dialect != "postgres":
        sql = _for_sqlite(sql)
    count, _ = await conn.execute_query(sql, list(values))
    return int(count)
