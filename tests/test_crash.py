"""Crash test: `kill -9` the real server in the middle of a payment stream, restart, retry.

The server runs as a subprocess (`python -m app.cli serve`) on its own fresh database: a temp
SQLite file, or a fresh PostgreSQL database plus Redis when YIKATONG_TEST_BACKEND=postgres.
Twenty clients send ~600 `pay` mutations over real TCP, each with its own idempotency key.
After a third of them the server is killed with SIGKILL; every request that got no answer is
retried with the same key and input after a restart, then the rest of the stream is sent, and
the interrupted keys plus a sample of the others are replayed once more. Afterwards: one
payment id per key, exactly one payment row per answered key, card balances that add up, and
`ledger verify` / `audit verify` pass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import socket
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import asyncpg
import httpx

from tests.helpers import CARD_ISSUE, PASSWORD, PRODUCT_CREATE, gql, token_for, uid

ROOT = Path(__file__).resolve().parents[1]
BACKEND = os.environ.get("YIKATONG_TEST_BACKEND", "sqlite")
SECRET_KEY = "crash-test-secret-key-" + "c" * 40
CARDS = 10
INITIAL_LOAD = 100_000
REQUESTS = 600
CLIENTS = 20
KILL_AFTER = REQUESTS // 3
REQUEST_TIMEOUT = 15.0
REPLAY_SAMPLE = 100

PAY = """mutation($i: PayInput!) { pay(input: $i) {
  payment { id amount cardId } errors { code field message } } }"""
CARD_BALANCE = "query($id: ID!) { card(id: $id) { id balance } }"


class Request(NamedTuple):
    key: str
    card_id: str
    amount: int


class Answer(NamedTuple):
    payment_id: str | None
    error: str | None


@dataclass
class Stream:
    """What the clients sent and what came back, per idempotency key."""

    token: str
    store_id: str
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    unanswered: list[Request] = field(default_factory=list)
    started: int = 0
    finished: int = 0

    def record(self, req: Request, answer: Answer) -> None:
        self.answers.setdefault(req.key, []).append(answer)


# -- processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no server log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def cli(
    *args: str, env: dict[str, str], stdin: str | None = None, seconds: float = 60
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), seconds
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`yikatong {' '.join(args)}` timed out after {seconds}s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


class Server:
    """`yikatong serve` as a subprocess; killed with SIGKILL, never asked politely."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""

    async def start(self, seconds: float = 30) -> str:
        port = _free_port()
        log = _open_log(self.log_path)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as probe:
            while True:
                if self.proc.returncode is not None:
                    raise AssertionError(
                        f"server exited with {self.proc.returncode}:\n{_tail(self.log_path)}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/readyz")).status_code == 200:
                        return self.base_url
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not ready in {seconds}s:\n{_tail(self.log_path)}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.returncode is None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)


# -- databases ------------------------------------------------------------------------------


def _pg(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def fresh_database(tmp_path: Path) -> Any:
    """A database URL of our own, dropped afterwards (PostgreSQL) or in tmp_path (SQLite)."""
    if BACKEND != "postgres":
        yield f"sqlite://{tmp_path / 'crash.sqlite3'}"
        return
    admin_url = os.environ.get("YIKATONG_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
    name = f"yikatong_crash_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(_pg(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        conn = await asyncpg.connect(_pg(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _sqlite_payments(path: str) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(path)
    try:
        return [tuple(r) for r in db.execute("SELECT id, card_id, amount FROM payments")]
    finally:
        db.close()


async def payments_in_db(database_url: str) -> list[tuple[str, str, int]]:
    if database_url.startswith("sqlite://"):
        return await asyncio.to_thread(_sqlite_payments, database_url.removeprefix("sqlite://"))
    conn = await asyncpg.connect(_pg(database_url))
    try:
        rows = await conn.fetch("SELECT id, card_id, amount FROM payments")
    finally:
        await conn.close()
    return [(r["id"], r["card_id"], r["amount"]) for r in rows]


async def drop_redis_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(url)
    try:
        keys = [k async for k in r.scan_iter(match=prefix + "*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


# -- the API --------------------------------------------------------------------------------


async def send(client: httpx.AsyncClient, stream: Stream, req: Request) -> Answer | None:
    """One pay mutation; None when the server gave no answer (connection refused/reset)."""
    variables = {
        "i": {
            "storeId": stream.store_id,
            "amount": req.amount,
            "cardId": req.card_id,
            "idempotencyKey": req.key,
        }
    }
    try:
        response = await client.post(
            "/graphql",
            json={"query": PAY, "variables": variables},
            headers={"Authorization": f"Bearer {stream.token}"},
        )
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return Answer(None, f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("errors"):
        return Answer(None, f"GraphQL errors: {body['errors']}")
    result = body["data"]["pay"]
    if result["payment"] is None:
        return Answer(None, f"pay errors: {result['errors']}")
    payment = result["payment"]
    assert (payment["amount"], payment["cardId"]) == (req.amount, req.card_id), (req, payment)
    return Answer(str(payment["id"]), None)


async def set_up(base_url: str, operator: str) -> tuple[Stream, list[str], str]:
    """Merchant, store, staff, a NAMED product and CARDS cards loaded with INITIAL_LOAD."""
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as c:
        op = await token_for(c, operator, PASSWORD)
        admin_username = uid("adm")
        body = await gql(
            c,
            """mutation($i: MerchantCreateInput!) { merchantCreate(input: $i) {
                 merchant { id } errors { code field } } }""",
            {
                "i": {
                    "name": "崩溃测试商户",
                    "regionCode": "110105",
                    "industry": "CATERING",
                    "adminUsername": admin_username,
                    "adminPassword": PASSWORD,
                }
            },
            token=op,
        )
        assert body["data"]["merchantCreate"]["errors"] == [], body
        merchant_id = body["data"]["merchantCreate"]["merchant"]["id"]
        admin = await token_for(c, admin_username, PASSWORD)
        body = await gql(
            c,
            """mutation($i: StoreCreateInput!) { storeCreate(input: $i) {
                 store { id } errors { code } } }""",
            {"i": {"merchantId": merchant_id, "name": "总店"}},
            token=admin,
        )
        assert body["data"]["storeCreate"]["errors"] == [], body
        store_id = body["data"]["storeCreate"]["store"]["id"]
        staff_username = uid("stf")
        body = await gql(
            c,
            """mutation($i: StaffCreateInput!) { staffCreate(input: $i) {
                 staff { id } errors { code } } }""",
            {
                "i": {
                    "merchantId": merchant_id,
                    "username": staff_username,
                    "password": PASSWORD,
                    "role": "MERCHANT_STAFF",
                    "storeIds": [store_id],
                }
            },
            token=admin,
        )
        assert body["data"]["staffCreate"]["errors"] == [], body
        staff = await token_for(c, staff_username, PASSWORD)
        body = await gql(
            c,
            PRODUCT_CREATE,
            {"i": {"merchantId": merchant_id, "name": "储值卡", "kind": "NAMED"}},
            token=admin,
        )
        assert body["data"]["cardProductCreate"]["errors"] == [], body
        product_id = body["data"]["cardProductCreate"]["cardProduct"]["id"]
        base_phone = secrets.randbelow(10**7) * 10
        card_ids = []
        for i in range(CARDS):
            body = await gql(
                c,
                CARD_ISSUE,
                {
                    "i": {
                        "productId": product_id,
                        "holderPhone": f"137{base_phone + i:08d}",
                        "initialLoad": INITIAL_LOAD,
                        "idempotencyKey": "issue-" + uid(),
                    }
                },
                token=staff,
            )
            issued = body["data"]["cardIssue"]
            assert issued["errors"] == [], body
            assert issued["card"]["balance"] == INITIAL_LOAD, issued
            card_ids.append(issued["card"]["id"])
    return Stream(token=staff, store_id=store_id), card_ids, admin


def client_for(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=CLIENTS + 5, max_keepalive_connections=CLIENTS + 5),
    )


async def run_workers(
    client: httpx.AsyncClient,
    stream: Stream,
    pending: deque[Request],
    stop: asyncio.Event,
    kill_now: asyncio.Event | None = None,
) -> None:
    """CLIENTS tasks draining `pending`; a request without an answer goes to stream.unanswered."""

    async def worker() -> None:
        while pending and not stop.is_set():
            req = pending.popleft()
            stream.started += 1
            if kill_now is not None and stream.started == KILL_AFTER:
                kill_now.set()
            answer = await send(client, stream, req)
            stream.finished += 1
            if answer is None:
                stream.unanswered.append(req)
            else:
                stream.record(req, answer)

    await asyncio.gather(*(worker() for _ in range(CLIENTS)))


async def answer_eventually(
    client: httpx.AsyncClient, stream: Stream, req: Request, deadline: float
) -> None:
    """Retry one request (same key, same input) until the server answers it."""
    while True:
        answer = await send(client, stream, req)
        if answer is not None:
            stream.record(req, answer)
            return
        assert time.monotonic() < deadline, f"no answer for {req} after the restart"
        await asyncio.sleep(0.2)


# -- the test -------------------------------------------------------------------------------


async def test_kill_9_mid_payment_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    began = time.monotonic()
    seed = secrets.randbits(32)
    rng = random.Random(seed)
    redis_url = os.environ.get("YIKATONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_prefix = f"ykt-crash-{secrets.token_hex(4)}:"
    log_path = tmp_path / "server.log"
    async with fresh_database(tmp_path) as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YIKATONG_")}
        env.update(
            {
                "YIKATONG_DATABASE_URL": database_url,
                "YIKATONG_DATA_DIR": str(tmp_path / "data"),
                "YIKATONG_ENV": "test",
                "YIKATONG_SECRET_KEY": SECRET_KEY,
                "YIKATONG_LOG_LEVEL": "WARNING",
            }
        )
        if BACKEND == "postgres":
            env["YIKATONG_REDIS_URL"] = redis_url
            env["YIKATONG_REDIS_PREFIX"] = redis_prefix
        server = Server(env, log_path)
        try:
            async with asyncio.timeout(150):
                await crash_and_check(server, env, database_url, rng, seed, began)
        finally:
            await server.stop()
            if BACKEND == "postgres":
                with contextlib.suppress(Exception):
                    await drop_redis_keys(redis_url, redis_prefix)


async def crash_and_check(
    server: Server,
    env: dict[str, str],
    database_url: str,
    rng: random.Random,
    seed: int,
    began: float,
) -> None:
    ctx = f"(seed {seed}, backend {BACKEND})"
    code, out = await cli("migrate", env=env)
    assert code == 0, out
    operator = uid("op")
    code, out = await cli(
        "create-operator", operator, "--password-stdin", env=env, stdin=PASSWORD + "\n"
    )
    assert code == 0, out

    base_url = await server.start()
    marks = {"start": time.monotonic() - began}
    stream, card_ids, admin = await set_up(base_url, operator)
    marks["setup"] = time.monotonic() - began
    requests = [
        Request("pay-" + secrets.token_hex(8), rng.choice(card_ids), rng.randint(100, 900))
        for _ in range(REQUESTS)
    ]
    pending = deque(requests)

    # Phase 1: the stream until a third of it has started, then SIGKILL under load.
    killed, kill_now = asyncio.Event(), asyncio.Event()
    in_flight_at_kill = -1

    async def killer() -> None:
        nonlocal in_flight_at_kill
        await kill_now.wait()
        await asyncio.sleep(rng.uniform(0, 0.03))
        in_flight_at_kill = stream.started - stream.finished
        server.kill()
        killed.set()

    async with client_for(base_url) as client:
        killer_task = asyncio.create_task(killer())
        await run_workers(client, stream, pending, killed, kill_now)
        await asyncio.wait_for(killer_task, 5)
    assert server.proc is not None
    await asyncio.wait_for(server.proc.wait(), 10)
    assert server.proc.returncode == -signal.SIGKILL, server.proc.returncode
    sent_before_kill = stream.finished
    unanswered = list(stream.unanswered)
    answered_before = {k for k, a in stream.answers.items() if a[0].payment_id}
    assert unanswered, f"the kill interrupted no request {ctx}"
    marks["kill"] = time.monotonic() - began

    # Phase 2: restart on the same database; retry every unanswered request with its key.
    base_url = await server.start()
    marks["restart"] = time.monotonic() - began
    rows_after_restart = len(await payments_in_db(database_url))
    committed_unanswered = rows_after_restart - len(answered_before)
    deadline = time.monotonic() + 30
    stream.unanswered = []
    async with client_for(base_url) as client:
        await asyncio.gather(*(answer_eventually(client, stream, r, deadline) for r in unanswered))

        # Phase 3: the rest of the stream.
        await run_workers(client, stream, pending, asyncio.Event())
        assert not pending and not stream.unanswered, f"server lost answers after restart {ctx}"
        marks["stream"] = time.monotonic() - began

        # Phase 4: replay the interrupted keys and a sample of the others: same answers.
        replay = deque(unanswered + rng.sample(requests, REPLAY_SAMPLE))
        await run_workers(client, stream, replay, asyncio.Event())
        assert not stream.unanswered, ctx

        balances = {}
        for card_id in card_ids:
            body = await gql(client, CARD_BALANCE, {"id": card_id}, token=admin)
            balances[card_id] = body["data"]["card"]["balance"]

    await server.stop()
    marks["replay"] = time.monotonic() - began

    # (1) One payment id per key; every key answered; no request refused.
    errors = {k: [a.error for a in v if a.error] for k, v in stream.answers.items()}
    errors = {k: e for k, e in errors.items() if e}
    assert not errors, f"requests refused or failed {ctx}: {list(errors.items())[:5]}"
    paid: dict[str, str] = {}
    for req in requests:
        ids = {a.payment_id for a in stream.answers.get(req.key, []) if a.payment_id}
        assert len(ids) == 1, f"key {req.key} answered with payment ids {ids} {ctx}"
        paid[req.key] = ids.pop()
    assert len(set(paid.values())) == len(paid), f"two keys share a payment id {ctx}"

    # (2) Exactly the answered payments are in the database: nothing lost, nothing doubled.
    rows = await payments_in_db(database_url)
    assert len(rows) == len(paid), f"{len(rows)} payments in the db, {len(paid)} keys {ctx}"
    assert {r[0] for r in rows} == set(paid.values()), ctx
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    for req in requests:
        assert by_id[paid[req.key]] == (req.card_id, req.amount), (req, ctx)

    # (3) Each card holds its load minus what was paid with it.
    for card_id in card_ids:
        spent = sum(r.amount for r in requests if r.card_id == card_id)
        assert balances[card_id] == INITIAL_LOAD - spent, (card_id, balances[card_id], spent, ctx)

    # (4) The books and the audit chain verify.
    code, out = await cli("ledger", "verify", env=env)
    assert code == 0, f"ledger verify {ctx}:\n{out}"
    code, out = await cli("audit", "verify", env=env)
    assert code == 0, f"audit verify {ctx}:\n{out}"

    print(
        f"\ncrash test {ctx}: {REQUESTS} requests, {sent_before_kill} finished before/at the"
        f" kill, {in_flight_at_kill} in flight at SIGKILL, {len(unanswered)} unanswered and"
        f" retried, {committed_unanswered} of those had committed before the kill;"
        f" {len(rows)} payments; {time.monotonic() - began:.1f}s;"
        f" phases: {', '.join(f'{k} {v:.1f}' for k, v in marks.items())}"
    )
