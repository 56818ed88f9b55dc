"""The whole chain on this machine: pcscd with vpcd's two virtual readers, our virtual cards
connected to vpcd (connecting is a tap), `yikatong reader` as its own process, and the app on a
real socket. A tap pays the tablet's charge and the payment is in the ledger; the bridge
survives pcscd being restarted and the API being away (the tap waits on disk, across a restart
of the bridge, and is charged once).

Needs root (to run pcscd), the Debian packages pcscd and vsmartcard-vpcd, and pyscard; without
them every test here is skipped, loudly. The two backends' runs go in parallel, so the module
holds a lock file while it owns pcscd and the readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "smartcard",
    reason="pyscard is not installed (pip install -e '.[devices]'; it builds against"
    " libpcsclite-dev with swig)",
    exc_type=ImportError,  # also a build that cannot load libpcsclite
)

from devices.queue import TapQueue
from domain.terminals import keystore
from tests.api.terminal_helpers import (
    TERMINALS,
    balance,
    charge_state,
    create_charge,
    payments_of,
    set_policy,
    uid_card,
)
from tests.api.test_uid_limits import personalised
from tests.devices.cards import MifareClassic, VirtualCard
from tests.devices.vpcd import PORTS, READERS, tapped
from tests.helpers import gql, make_merchant, make_product

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
LOCK = Path(tempfile.gettempdir()) / "yikatong-pcscd-integration.lock"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
        s.close()
        return True
    return False


def _pcscd_running() -> bool:
    return any(
        (Path("/proc") / pid / "comm").read_text().strip() == "pcscd"
        for pid in os.listdir("/proc")
        if pid.isdigit() and (Path("/proc") / pid / "comm").exists()
    )


def _why_not() -> str | None:
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)"
    if not VPCD_DRIVER.exists():
        return "vpcd is not installed (apt-get install vsmartcard-vpcd)"
    if os.geteuid() != 0:
        return "pcscd must be started as root, and this run is not root"
    return None


def _skip(reason: str) -> None:
    warnings.warn(f"pcscd integration test SKIPPED: {reason}", pytest.PytestWarning, stacklevel=2)
    pytest.skip(f"pcscd integration: {reason}")


class Pcscd:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while not all(_listening(p) for p in PORTS) or not PCSCD_SOCKET.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pcscd did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    reason = _why_not()
    if reason:
        _skip(reason)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other backend's run waits here
        if _pcscd_running():
            _skip("a pcscd this test did not start is running; it is left alone")
        daemon = Pcscd(tmp_path_factory.mktemp("pcscd") / "pcscd.log")
        try:
            daemon.start()
        except (OSError, RuntimeError) as exc:
            daemon.stop()
            _skip(f"pcscd could not be started: {exc}")
        try:
            yield daemon
        finally:
            daemon.stop()


class Bridge:
    """`yikatong reader` as its own process."""

    def __init__(self, api: str, key_file: Path, state: Path, log: Path) -> None:
        self.api, self.key_file, self.state, self.log = api, key_file, state, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "reader",
                "--api",
                self.api,
                "--terminal-key-file",
                str(self.key_file),
                "--state-dir",
                str(self.state),
                "--heartbeat-seconds",
                "0.5",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    async def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
        self.proc = None

    def queued(self) -> int:
        queue = TapQueue(self.state / "taps.sqlite3")
        try:
            return len(queue)
        finally:
            queue.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@contextlib.asynccontextmanager
async def bridge(api: str, terminal_key: str, tmp: Path) -> AsyncIterator[Bridge]:
    key_file = tmp / "terminal.key"
    key_file.write_text(terminal_key + "\n")
    key_file.chmod(0o600)
    running = Bridge(api, key_file, tmp / "state", tmp / "bridge.log")
    running.start()
    try:
        yield running
    finally:
        await running.stop()


async def until(check: Any, what: str, within: float = 20.0, bridge: Bridge | None = None) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {within}s\n{bridge.tail() if bridge else ''}")
        await asyncio.sleep(0.1)


async def reader_status(client: Any, m: Any) -> str:
    body = await gql(client, TERMINALS, {"id": m.merchant_id}, token=m.admin)
    (terminal,) = [t for t in body["data"]["terminals"] if t["id"] == m.terminal_id]
    return str(terminal["readerStatus"] or "")


async def sees_readers(client: Any, m: Any, extra: str = "") -> bool:
    status = await reader_status(client, m)
    return all(r in status for r in READERS) and "pcscd up" in status and extra in status


async def paid(client: Any, m: Any, charge_id: str) -> bool:
    return (await charge_state(client, m.terminal_key, charge_id))["status"] == "SUCCEEDED"


async def tap_and_wait(
    client: Any, m: Any, card: VirtualCard, port: int, charge_id: str, running: Bridge
) -> None:
    with tapped(card, port):
        await until(lambda: paid(client, m, charge_id), "the charge is paid", bridge=running)

        async def shown() -> bool:
            return bool(card.feedback)

        await until(shown, "the reader shows the outcome", 5, running)


async def test_a_uid_card_tapped_on_a_real_pcscd_reader_pays(client, server_url, pcscd, tmp_path):
    from domain.ledger.verify import verify

    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=8000)
    async with bridge(f"http://{server_url}", m.terminal_key, tmp_path) as running:
        await until(
            lambda: sees_readers(client, m), "the bridge sees vpcd's readers", bridge=running
        )
        charge = await create_charge(client, m.terminal_key, 1500)
        card = MifareClassic(bytes.fromhex(uid))
        await tap_and_wait(client, m, card, PORTS[0], charge["id"], running)
        assert card.commands[0] == bytes.fromhex("FFCA000000")
        assert card.feedback[0][:3] == b"\xff\x00\x40"  # the ACR122U LED/buzzer command
    assert await balance(client, m, account["id"]) == 6500
    assert [p["amount"] for p in await payments_of(client, m, account["id"])] == [-1500]
    report = await verify()
    assert report.ok, report.problems


async def test_a_desfire_card_pays_only_after_aes_authentication(
    client, server_url, pcscd, tmp_path
):
    from domain.terminals.models import ReaderTap

    master = os.urandom(16)
    app = keystore.DesfireApplication(aid=0xF0594B, key_no=1, system_identifier=b"Yikatong")
    keystore.configure(keystore.MasterKeyStore(master, app))
    try:
        m = await make_merchant(client)
        product = await make_product(client, m)
        await set_policy(client, m, product, technology="DESFIRE_EV2")
        account, uid = await uid_card(client, m, load=8000, product_id=product)
        async with bridge(f"http://{server_url}", m.terminal_key, tmp_path) as running:
            await until(
                lambda: sees_readers(client, m, "desfire on"), "DESFire is on", bridge=running
            )
            charge = await create_charge(client, m.terminal_key, 2500)
            card = personalised(master, app, uid)
            await tap_and_wait(client, m, card, PORTS[1], charge["id"], running)
            assert card.authenticated == 1
        assert await balance(client, m, account["id"]) == 5500
        assert await ReaderTap.filter(charge_id=charge["id"], authentic=True).count() == 1
    finally:
        keystore.reset()


async def test_the_bridge_survives_pcscd_restarting(client, server_url, pcscd, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=8000)
    async with bridge(f"http://{server_url}", m.terminal_key, tmp_path) as running:
        await until(lambda: sees_readers(client, m), "the bridge sees the readers", bridge=running)
        pcscd.stop()

        async def down() -> bool:
            return "pcscd DOWN" in await reader_status(client, m)

        await until(down, "the bridge reports pcscd down", bridge=running)
        pcscd.start()
        await until(lambda: sees_readers(client, m), "the readers come back", bridge=running)
        charge = await create_charge(client, m.terminal_key, 300)
        await tap_and_wait(
            client, m, MifareClassic(bytes.fromhex(uid)), PORTS[0], charge["id"], running
        )
    assert await balance(client, m, account["id"]) == 7700


class Proxy:
    """A TCP forwarder to the app that can be switched off (connection refused)."""

    def __init__(self, target: int) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def test_api_away_the_tap_waits_on_disk_across_a_restart_and_is_charged_once(
    client, server_url, pcscd, tmp_path
):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=8000)
    proxy = Proxy(int(server_url.rsplit(":", 1)[1]))
    await proxy.up()
    try:
        api = f"http://127.0.0.1:{proxy.port}"
        async with bridge(api, m.terminal_key, tmp_path) as running:
            await until(lambda: sees_readers(client, m), "the bridge is up", bridge=running)
            charge = await create_charge(client, m.terminal_key, 900)
            await proxy.down()
            card = MifareClassic(bytes.fromhex(uid))
            with tapped(card, PORTS[0]):

                async def queued() -> bool:
                    return running.queued() == 1

                await until(queued, "the tap is queued on disk", bridge=running)

                async def shown() -> bool:
                    return bool(card.feedback)

                await until(shown, "the reader shows 'queued'", 5, running)
        assert (await charge_state(client, m.terminal_key, charge["id"]))["status"] == "PENDING"
        # A new bridge process finds the tap on disk; the API comes back.
        async with bridge(api, m.terminal_key, tmp_path) as running:
            await asyncio.sleep(1.0)
            assert running.queued() == 1
            await proxy.up()
            await until(
                lambda: paid(client, m, charge["id"]), "the queued tap pays", bridge=running
            )

            async def drained() -> bool:
                return running.queued() == 0

            await until(drained, "the queue is empty", bridge=running)
    finally:
        await proxy.down()
    assert await balance(client, m, account["id"]) == 7100
    assert [p["amount"] for p in await payments_of(client, m, account["id"])] == [-900]
