"""End-to-end `pay` throughput and latency against PostgreSQL, with the raw SQL floor.

    python bench/payments.py [--clients 32] [--seconds 10] [--repeat 3] [--workers 2] [--write]

Sets up a fresh database (dropped afterwards), seeds merchants, stores, terminals and cards
through the domain services, serves the API with `yikatong serve --workers N` in a subprocess
(uvicorn, N worker processes sharing the port; the table says how many), and drives `pay`
mutations over HTTP/1.1 keep-alive from N concurrent connections (variables, terminal keys,
a fresh idempotency key per request). Two traffic shapes: spread over many merchants and cards,
and every payment to one merchant. Then the floor: the same ledger function (`yk_pay`) called
straight through asyncpg with the same concurrency, no HTTP, no GraphQL. Each figure is run
--repeat times; min/median/max are printed (and written to bench/README.md with --write).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAY = "mutation($i: PayInput!) { pay(input: $i) { payment { id status } errors { code } } }"


@dataclass
class Target:
    store_id: str
    terminal_key: str
    merchant_id: str
    card_ids: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(database_url: str, merchants: int, cards_per: int, hot_cards: int) -> list[Target]:
    """Merchants with one store and terminal each; cards loaded through the real services."""
    from app.asgi import AppState
    from app.db import close_database, open_database
    from app.settings import load_settings
    from domain.actor import Actor, Role
    from domain.cards import service as cards
    from domain.merchants import service as merchants_svc

    os.environ["YIKATONG_DATABASE_URL"] = database_url
    AppState(load_settings()).configure_domain()
    await open_database(database_url)
    operator = Actor(id="usr_bench", role=Role.OPERATOR)
    targets = []
    try:
        for i in range(merchants + 1):
            m = await merchants_svc.create_merchant(
                operator,
                name=f"Bench {i}",
                region_code="110105",
                industry="RETAIL",
                issuer_class=None,
                admin_username=f"bench-admin-{i}",
                admin_password="bench-password-1",
            )
            admin = Actor(id=f"usr_admin{i}", role=Role.MERCHANT_ADMIN, merchant_id=m.id)
            store = await merchants_svc.create_store(admin, m.id, "store", None)
            term = await merchants_svc.register_terminal(admin, store.id, "pos")
            product = await cards.create_product(
                admin,
                merchant_id=m.id,
                name="bench",
                kind="NAMED",
                validity_days=None,
                bonus_rules=[],
                face_values=[],
                bonus_first=False,
                pin_threshold=None,
            )
            staff = Actor(id=f"usr_staff{i}", role=Role.MERCHANT_STAFF, merchant_id=m.id)
            count = hot_cards if i == 0 else cards_per
            ids = []
            for _ in range(count):
                phone = "13" + f"{random.randrange(10**9):09d}"
                card = await cards.issue_card(
                    staff,
                    product_id=product.id,
                    holder_phone=phone,
                    initial_load=500_000,
                    card_uid=None,
                    idempotency_key=secrets.token_hex(8),
                    store_id=store.id,
                )
                ids.append(card.id)
            targets.append(Target(store.id, term.key, m.id, ids))
    finally:
        await close_database()
    return targets


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost less than the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def drive_http(
    port: int, targets: list[Target], clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        conn = Connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            t = random.choice(targets)
            variables = {
                "i": {
                    "storeId": t.store_id,
                    "cardId": random.choice(t.card_ids),
                    "amount": 1,
                    "idempotencyKey": secrets.token_hex(10),
                }
            }
            body = orjson.dumps({"query": PAY, "variables": variables})
            start = time.perf_counter()
            status, raw = await conn.post(
                "/graphql",
                body,
                {"Content-Type": "application/json", "Authorization": f"Terminal {t.terminal_key}"},
            )
            latencies.append(time.perf_counter() - start)
            data = orjson.loads(raw)
            if status != 200 or "errors" in data or data["data"]["pay"]["errors"]:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summarize(latencies, time.perf_counter() - started, errors)


async def drive_raw(
    dsn: str, targets: list[Target], clients: int, seconds: float
) -> dict[str, float]:
    """The same money movement without HTTP or GraphQL: `yk_pay` through asyncpg."""
    from domain.ids import new_id

    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                t = random.choice(targets)
                start = time.perf_counter()
                row = await conn.fetchrow(
                    "SELECT * FROM yk_pay($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    "raw",
                    secrets.token_hex(10),
                    "h",
                    new_id("pay"),
                    new_id("txn"),
                    new_id("cta"),
                    random.choice(t.card_ids),
                    t.merchant_id,
                    t.store_id,
                    1,
                    False,
                    random.randrange(8),
                    "raw",
                    dt.datetime.now(dt.UTC),
                )
                latencies.append(time.perf_counter() - start)
                if row["outcome"] != "OK":
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    await pool.close()
    return summarize(latencies, time.perf_counter() - started, errors)


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (uvicorn's supervisor and its workers), then
    SIGKILL if it is still there after 10 s: no worker outlives the run."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        try:
            server.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # A worker whose supervisor died first is still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)


def summarize(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "p50": latencies[n // 2] * 1000 if n else 0,
        "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0,
        "errors": errors,
        "n": n,
    }


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("YIKATONG_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("YIKATONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--cards", type=int, default=50, help="cards per spread merchant")
    parser.add_argument("--hot-cards", type=int, default=500, help="cards of the hot merchant")
    parser.add_argument("--write", action="store_true", help="append the table to bench/README.md")
    args = parser.parse_args()

    name = f"yikatong_bench_{secrets.token_hex(3)}"
    admin_dsn = args.pg.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    database_url = args.pg.rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "YIKATONG_DATABASE_URL": database_url,
        "YIKATONG_REDIS_URL": args.redis,
        "YIKATONG_REDIS_PREFIX": f"{name}:",
        "YIKATONG_ENV": "test",
        "YIKATONG_SECRET_KEY": "bench-" + "k" * 40,
        "YIKATONG_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    server = None
    try:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        t0 = time.perf_counter()
        targets = await seed(database_url, args.merchants, args.cards, args.hot_cards)
        print(
            f"seeded {sum(len(t.card_ids) for t in targets)} cards in "
            f"{time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the workers stop with it
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        # Warm up caches and connections (every worker's: connections land on all of them).
        await drive_http(port, targets, 4 * args.workers, 1)
        shapes = {"spread": targets[1:], "one merchant": targets[:1]}
        results: dict[str, list[dict[str, float]]] = {}
        for label, shape in shapes.items():
            for _ in range(args.repeat):
                results.setdefault(f"HTTP+GraphQL, {label}", []).append(
                    await drive_http(port, shape, args.clients, args.seconds)
                )
                results.setdefault(f"raw SQL floor, {label}", []).append(
                    await drive_raw(
                        database_url.replace("postgres://", "postgresql://", 1),
                        shape,
                        args.clients,
                        args.seconds,
                    )
                )
    finally:
        if server is not None:
            stop(server)
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    lines = [
        f"### payments, {dt.date.today()}: {args.clients} clients, {args.seconds:.0f}s x "
        f"{args.repeat} runs, {args.workers} uvicorn worker{'s' if args.workers > 1 else ''}, "
        f"PostgreSQL + Redis on the same {os.cpu_count()}-core box (min / median / max)",
        "",
        "| what | payments/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for label, runs in results.items():
        lines.append(
            f"| {label} | {spread([r['rps'] for r in runs])} | {spread([r['p50'] for r in runs])}"
            f" | {spread([r['p99'] for r in runs])} | {sum(int(r['errors']) for r in runs)} |"
        )
    med = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    ratio_spread = med["HTTP+GraphQL, spread"] / med["raw SQL floor, spread"]
    ratio_hot = med["HTTP+GraphQL, one merchant"] / med["HTTP+GraphQL, spread"]
    lines += [
        "",
        f"end-to-end / raw floor (spread, medians): {ratio_spread:.2f}; "
        f"one merchant / spread (end-to-end, medians): {ratio_hot:.2f}",
        "",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        readme = ROOT / "bench" / "README.md"
        readme.write_text(readme.read_text() + "\n" + table)
    failed = sum(int(r["errors"]) for runs in results.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
