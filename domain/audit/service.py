"""Audit log (审计日志): who did what, when, from where; append-only and hash-chained.

Each record stores the hash of the previous one, so editing or deleting a record breaks the
chain at that point and `yikatong audit verify` reports it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.actor import Actor, Origin
from domain.audit.models import AuditRecord
from domain.db import is_postgres

GENESIS = "0" * 64
# Any constant works; it names the advisory lock that serialises appends to the chain.
_CHAIN_LOCK = 0x59_4B_54_41  # "YKTA"


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"|" + body).hexdigest()


def _fields(record: AuditRecord) -> dict[str, Any]:
    return {
        "at": record.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": record.actor_id,
        "actor_role": record.actor_role,
        "action": record.action,
        "target": record.target,
        "ip": record.ip,
        "request_id": record.request_id,
        "details": record.details,
    }


async def record(
    conn: BaseDBAsyncClient,
    who: Actor | Origin | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append a record inside the caller's transaction (it commits or rolls back with it)."""
    if is_postgres():
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_CHAIN_LOCK])
    last = await AuditRecord.all().using_db(conn).order_by("-id").first().values("hash")
    prev_hash = last["hash"] if last else GENESIS
    entry = AuditRecord(
        at=clock.now(),
        actor_id=who.id if isinstance(who, Actor) else None,
        actor_role=str(who.role) if isinstance(who, Actor) else None,
        action=action,
        target=target,
        ip=who.ip if who else None,
        request_id=who.request_id if who else None,
        details=details or {},
        prev_hash=prev_hash,
    )
    entry.hash = _digest(prev_hash, _fields(entry))
    await entry.save(using_db=conn)
    return entry


@dataclass
class AuditReport:
    records: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(batch: int = 5000) -> AuditReport:
    """Walk the chain in order and recompute every hash."""
    problems: list[str] = []
    prev_hash = GENESIS
    count = 0
    last_id = 0
    while True:
        rows = await AuditRecord.filter(id__gt=last_id).order_by("id").limit(batch)
        if not rows:
            break
        for row in rows:
            count += 1
            if row.prev_hash != prev_hash:
                problems.append(f"record {row.id}: previous hash does not match (chain broken)")
            expected = _digest(row.prev_hash, _fields(row))
            if expected != row.hash:
                problems.append(f"record {row.id} ({row.action}): content does not match its hash")
            prev_hash = row.hash
            last_id = row.id
    return AuditReport(records=count, problems=problems)
