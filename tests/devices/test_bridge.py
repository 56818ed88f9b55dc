"""The reader bridge against the real app on a real socket, faked only at the pyscard boundary
(a `CardConnection` subclass over virtual cards, and monitors reporting from their own thread)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "smartcard",
    reason="pyscard is not installed (pip install -e '.[devices]'; it builds against"
    " libpcsclite-dev with swig)",
    exc_type=ImportError,  # also a build that cannot load libpcsclite
)

from devices.apdu import Feedback, led_buzzer
from devices.api import ApiClient
from devices.bridge import BridgeSettings, ReaderBridge
from devices.cli import KeyFile
from devices.queue import QueuedTap, TapQueue
from domain.terminals import keystore
from tests.api.terminal_helpers import (
    ROTATE,
    balance,
    charge_state,
    create_charge,
    set_policy,
    uid_card,
)
from tests.api.test_uid_limits import personalised
from tests.devices.cards import DesfireEV2, MifareClassic, VirtualCard
from tests.devices.fakes import FakeMonitors
from tests.helpers import gql, make_merchant, make_product

SETTINGS = BridgeSettings(
    heartbeat_seconds=0.3,
    probe_seconds=0.05,
    feedback_wait=3.0,
    debounce_seconds=1.0,
    backoff_min=0.05,
    backoff_max=0.2,
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Running:
    def __init__(self, bridge: ReaderBridge, queue: TapQueue) -> None:
        self.bridge = bridge
        self.queue = queue

    @property
    def monitors(self) -> FakeMonitors:
        monitors = self.bridge._monitors
        assert isinstance(monitors, FakeMonitors)
        return monitors

    def events(self, kind: str) -> list[str]:
        return [detail for k, detail in self.bridge.events if k == kind]


@contextlib.asynccontextmanager
async def bridge_on(
    url: str, key: Callable[[], str] | str, state: Path, reload_key: Any = None
) -> AsyncIterator[Running]:
    queue = TapQueue(state / "taps.sqlite3")
    api = ApiClient(url, key if callable(key) else (lambda: key), timeout=2.0)
    bridge = ReaderBridge(api, queue, FakeMonitors, SETTINGS, reload_key=reload_key)
    task = asyncio.create_task(bridge.run())
    running = Running(bridge, queue)
    try:
        await until(lambda: bridge._monitors is not None and bridge.readers)
        yield running
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 10)
        await api.close()
        queue.close()


def led(card: VirtualCard, kind: Feedback) -> bool:
    return bytes(led_buzzer(kind)) in card.feedback


async def test_a_tap_pays_the_charge_and_the_reader_shows_it(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 1200)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        card = MifareClassic(bytes.fromhex(uid))
        run.monitors.put(card)
        await until(lambda: run.events("paid"))
        await until(lambda: led(card, Feedback.SUCCESS))
        assert card.commands[0] == bytes.fromhex("FFCA000000")
        # Every transmit ran on the reader's own worker thread, never on the loop or pyscard's.
        threads = {t for c in run.monitors.field.connections for t in c.threads}
        assert threads and all(t.startswith("reader:ACS ACR122U") for t in threads), threads
        assert len(run.queue) == 0
    state = await charge_state(client, m.terminal_key, charge["id"])
    assert state["status"] == "SUCCEEDED"
    assert await balance(client, m, account["id"]) == 3800


async def test_a_refused_tap_shows_an_error_and_leaves_the_queue(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        card = MifareClassic(bytes.fromhex(uid))
        run.monitors.put(card)
        await until(lambda: run.events("refused"))
        assert "NO_PENDING_CHARGE" in run.events("refused")[0]
        await until(lambda: led(card, Feedback.ERROR))
        assert len(run.queue) == 0
    assert await balance(client, m, account["id"]) == 5000


async def test_api_unreachable_taps_wait_on_disk_and_are_charged_once(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    charge = await create_charge(client, m.terminal_key, 700)
    down = f"http://127.0.0.1:{closed_port()}"
    async with bridge_on(down, m.terminal_key, tmp_path) as run:
        card = MifareClassic(bytes.fromhex(uid))
        run.monitors.put(card)
        await until(lambda: led(card, Feedback.QUEUED))
        assert len(run.queue) == 1
        (queued,) = run.queue.pending()
    # The bridge stopped (or crashed) with the tap on disk; it comes back with the API.
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        await until(lambda: run.events("paid"))
        assert len(run.queue) == 0
        # Say the answer had been lost and the tap was sent again: the server replays it.
        run.queue.add(queued)
        run.bridge._wake.set()
        await until(lambda: len(run.events("paid")) == 2)
        assert run.events("paid")[0] == run.events("paid")[1]
    assert (await charge_state(client, m.terminal_key, charge["id"]))["status"] == "SUCCEEDED"
    assert await balance(client, m, account["id"]) == 4300


async def test_the_api_coming_back_sends_taps_oldest_first(client, server_url, tmp_path):
    m = await make_merchant(client)
    first, uid_1 = await uid_card(client, m, load=5000)
    second, uid_2 = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 100)
    await create_charge(client, m.terminal_key, 200)
    queue = TapQueue(tmp_path / "taps.sqlite3")
    now = time.time()
    queue.add(QueuedTap("tap-b" + os.urandom(6).hex(), "r", uid_2, now - 1))
    queue.add(QueuedTap("tap-a" + os.urandom(6).hex(), "r", uid_1, now - 2))
    queue.close()
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        await until(lambda: len(run.events("paid")) == 2)
    # The older tap paid the older charge.
    assert await balance(client, m, first["id"]) == 4900
    assert await balance(client, m, second["id"]) == 4800


async def test_a_rotated_key_keeps_taps_until_the_key_file_has_the_new_one(
    client, server_url, tmp_path
):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 300)
    key_file = tmp_path / "terminal.key"
    key_file.write_text(m.terminal_key + "\n")
    key = KeyFile(key_file)
    body = await gql(client, ROTATE, {"i": {"terminalId": m.terminal_id}}, token=m.admin)
    new_key = body["data"]["terminalKeyRotate"]["terminalKey"]
    async with bridge_on(f"http://{server_url}", key, tmp_path, reload_key=key.reload) as run:
        card = MifareClassic(bytes.fromhex(uid))
        run.monitors.put(card)
        await until(lambda: run.events("unauthorized"))
        assert len(run.queue) == 1
        key_file.write_text(new_key + "\n")
        os.utime(key_file, (time.time() + 5, time.time() + 5))
        await until(lambda: run.events("paid"))
    assert await balance(client, m, account["id"]) == 4700


async def test_reader_unplugged_and_plugged_back(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        name = run.monitors.readers[0]
        before = run.bridge.readers[name]
        run.monitors.unplug(name)
        await until(lambda: name not in run.bridge.readers)
        assert before.executor._shutdown
        run.monitors.plug(name)
        await until(lambda: name in run.bridge.readers)
        assert run.bridge.readers[name] is not before
        await create_charge(client, m.terminal_key, 100)
        run.monitors.put(MifareClassic(bytes.fromhex(uid)), name)
        await until(lambda: run.events("paid"))
    assert await balance(client, m, account["id"]) == 4900


async def test_pcscd_stopped_restarted_and_a_card_left_on_the_reader(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        monitors = run.monitors
        monitors.pcscd = False
        await until(lambda: not run.bridge.pcscd_up and not monitors.running)
        assert run.bridge.readers == {}
        # A card is put down while pcscd is away; it is there when monitoring resumes: not a tap.
        await create_charge(client, m.terminal_key, 100)
        lying = MifareClassic(bytes.fromhex(uid))
        monitors.field.cards[monitors.readers[0]] = lying
        monitors.pcscd = True
        await until(lambda: run.bridge.pcscd_up and monitors.running and run.bridge.readers)
        monitors._from_thread(monitors.on_cards, [_card(monitors)], [])  # as pyscard reports it
        await asyncio.sleep(0.3)
        assert not run.events("tap") and not lying.commands
        monitors.take()
        # pcscd restarted between two probes: the monitors' context is stale; they restart.
        monitors.alive = False
        await until(lambda: monitors.starts == 3)
        monitors.put(MifareClassic(bytes.fromhex(uid)))
        await until(lambda: run.events("paid"))
        assert "pcscd-down" in [k for k, _ in run.bridge.events]
    assert await balance(client, m, account["id"]) == 4900


def _card(monitors: FakeMonitors) -> Any:
    from tests.devices.fakes import FakeCard

    reader = monitors.readers[0]
    return FakeCard(reader, monitors.field.cards[reader], monitors.field)


async def test_a_card_bouncing_in_the_field_is_one_tap(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 100)
    await create_charge(client, m.terminal_key, 100)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        card = MifareClassic(bytes.fromhex(uid))
        run.monitors.put(card)
        await until(lambda: run.events("paid"))
        run.monitors.take()
        run.monitors.put(card)
        await until(lambda: run.events("debounced"))
    assert await balance(client, m, account["id"]) == 4900


class NoLedReader(MifareClassic):
    """A reader without the ACR122U LED command; and the card leaves before the result."""

    def apdu(self, command: bytes) -> bytes:
        if command[:3] == b"\xff\x00\x40":
            return b"\x6a\x81"
        return super().apdu(command)


async def test_feedback_failures_are_ignored(client, server_url, tmp_path):
    m = await make_merchant(client)
    account, uid = await uid_card(client, m, load=5000)
    await create_charge(client, m.terminal_key, 100)
    await create_charge(client, m.terminal_key, 100)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        run.monitors.put(NoLedReader(bytes.fromhex(uid)))
        await until(lambda: run.events("paid"))
        # Gone as soon as the UID was read: the feedback transmit fails, nothing else does.
        gone = MifareClassic(bytes.fromhex(uid))
        original = gone.apdu

        def vanish(command: bytes) -> bytes:
            answer = original(command)
            if command[:2] == b"\xff\xca":
                run.monitors.field.cards.clear()
            return answer

        gone.apdu = vanish  # type: ignore[method-assign]
        await asyncio.sleep(SETTINGS.debounce_seconds)
        run.monitors.put(gone)
        await until(lambda: len(run.events("paid")) == 2)
    assert await balance(client, m, account["id"]) == 4800


@pytest.fixture
def desfire_keys():
    master = os.urandom(16)
    app = keystore.DesfireApplication(aid=0xF0594B, key_no=1, system_identifier=b"Yikatong")
    keystore.configure(keystore.MasterKeyStore(master, app))
    yield master, app
    keystore.reset()


async def test_the_bridge_relays_desfire_authentication(client, server_url, tmp_path, desfire_keys):
    from domain.terminals.models import ReaderTap

    master, app = desfire_keys
    m = await make_merchant(client)
    product = await make_product(client, m)
    await set_policy(client, m, product, technology="DESFIRE_EV2")
    account, uid = await uid_card(client, m, load=5000, product_id=product)
    charge = await create_charge(client, m.terminal_key, 450)
    async with bridge_on(f"http://{server_url}", m.terminal_key, tmp_path) as run:
        await until(lambda: run.bridge.desfire is not None)  # from the heartbeat
        clone = DesfireEV2(bytes.fromhex(uid), app.aid_wire, app.key_no, os.urandom(16))
        run.monitors.put(clone)
        await until(lambda: run.events("desfire-failed"))
        assert "91AE" in run.events("desfire-failed")[0]
        await until(lambda: led(clone, Feedback.ERROR))
        assert not run.events("tap") and len(run.queue) == 0
        run.monitors.take()
        genuine = personalised(master, app, uid)
        run.monitors.put(genuine)
        await until(lambda: run.events("paid"))
        assert genuine.authenticated == 1
        assert "+desfire" in run.events("tap")[0]
    assert (await charge_state(client, m.terminal_key, charge["id"]))["status"] == "SUCCEEDED"
    assert await balance(client, m, account["id"]) == 4550
    assert await ReaderTap.filter(authentic=True, charge_id=charge["id"]).count() == 1
