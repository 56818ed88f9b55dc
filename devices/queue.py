"""Taps kept on disk until the API has answered them.

A tap is written here (with its idempotency key) before it is sent, and removed only when the
API answered it: paid, or refused with a business error. A crash, a restart or an unreachable
API leave it here to be sent again with the same key, which the server answers with the first
outcome, so a tap is never charged twice. SQLite in WAL mode with synchronous=FULL: a row
survives a power cut once `add` returns.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS taps (
    key TEXT PRIMARY KEY,
    reader TEXT NOT NULL,
    uid TEXT NOT NULL,
    tapped_at REAL NOT NULL,
    proof TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)
"""


@dataclass(frozen=True)
class QueuedTap:
    key: str
    reader: str
    uid: str
    tapped_at: float  # Unix time by the bridge's clock
    proof: dict[str, str] | None = None
    attempts: int = 0
    last_error: str | None = None

    def age_ms(self, now: float | None = None) -> int:
        return max(0, int(((now if now is not None else time.time()) - self.tapped_at) * 1000))


class TapQueue:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, tap: QueuedTap) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO taps (key, reader, uid, tapped_at, proof)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                tap.key,
                tap.reader,
                tap.uid,
                tap.tapped_at,
                json.dumps(tap.proof) if tap.proof else None,
            ),
        )

    _COLUMNS = "key, reader, uid, tapped_at, proof, attempts, last_error"

    @staticmethod
    def _tap(r: tuple[str, str, str, float, str | None, int, str | None]) -> QueuedTap:
        return QueuedTap(
            key=r[0],
            reader=r[1],
            uid=r[2],
            tapped_at=r[3],
            proof=json.loads(r[4]) if r[4] else None,
            attempts=r[5],
            last_error=r[6],
        )

    def pending(self, limit: int = 100) -> list[QueuedTap]:
        """Oldest first: the order the taps happened in."""
        rows = self._db.execute(
            f"SELECT {self._COLUMNS} FROM taps ORDER BY tapped_at, key LIMIT ?",  # noqa: S608
            (limit,),
        ).fetchall()
        return [self._tap(r) for r in rows]

    def get(self, key: str) -> QueuedTap | None:
        row = self._db.execute(
            f"SELECT {self._COLUMNS} FROM taps WHERE key = ?",  # noqa: S608
            (key,),
        ).fetchone()
        return self._tap(row) if row else None

    def done(self, key: str) -> None:
        self._db.execute("DELETE FROM taps WHERE key = ?", (key,))

    def attempt_failed(self, key: str, error: str) -> None:
        self._db.execute(
            "UPDATE taps SET attempts = attempts + 1, last_error = ? WHERE key = ?",
            (error[:500], key),
        )

    def drop_older_than(self, seconds: float, now: float | None = None) -> list[QueuedTap]:
        """Taps too old to pay anything: the server pays only charges that were waiting when
        the card was tapped and still wait, and a charge waits minutes at most."""
        cutoff = (now if now is not None else time.time()) - seconds
        old = [t for t in self.pending(10_000) if t.tapped_at < cutoff]
        self._db.execute("DELETE FROM taps WHERE tapped_at < ?", (cutoff,))
        return old

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM taps").fetchone()[0])
