"""The reader bridge: PC/SC readers in, taps out to the API.

Threads and the loop:
  * pyscard's monitor threads report readers and cards; the observers only call
    `loop.call_soon_threadsafe`, and everything else happens on the asyncio loop.
  * each reader has one worker thread (`ThreadPoolExecutor(max_workers=1)`) for its blocking
    pyscard calls (connect, transmit, disconnect): a slow reader never blocks another, and one
    reader's commands never interleave.
  * one more thread probes pcscd every second (`PcscMonitors.probe`).

A tap: read the UID (FF CA); for a DESFire card with the server's application, relay
AuthenticateEV2First between card and server; write the tap to the disk queue with a fresh
idempotency key; wake the sender; show the outcome on the reader (paid, refused, or kept for
later). The sender sends queued taps oldest first, one at a time, and keeps those the API did not
answer (unreachable, 5xx, key refused), retrying with backoff; a tap is removed only once the
API answered it. Taps older than `max_tap_age` are dropped (no charge can be waiting for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from devices import card as cardio
from devices.apdu import Feedback
from devices.api import ApiClient, DesfireConfig, Paid, Refused, Unauthorized, Unreachable
from devices.pcsc import Probe
from devices.queue import QueuedTap, TapQueue

log = logging.getLogger("yikatong.reader")
T = TypeVar("T")


def masked(uid: str) -> str:
    """A UID in the log: enough to tell cards apart, not enough to clone one from the log."""
    return f"{uid[:2]}…{uid[-4:]}"


class Monitors(Protocol):
    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def probe(self) -> Probe: ...


@dataclass
class BridgeSettings:
    heartbeat_seconds: float = 30.0
    probe_seconds: float = 1.0
    feedback_wait: float = 3.0  # how long a tap waits for the API before showing "queued"
    debounce_seconds: float = 1.5  # the same card again on the same reader within this: ignored
    max_tap_age: float = 600.0
    backoff_min: float = 0.5
    backoff_max: float = 30.0


@dataclass
class Outcome:
    paid: Paid | None = None
    refused: Refused | None = None
    queued: bool = False  # the API did not answer: kept on disk, sent later

    @property
    def feedback(self) -> Feedback:
        if self.paid:
            return Feedback.SUCCESS
        return Feedback.QUEUED if self.queued else Feedback.ERROR


class Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"reader:{name}")
        self.last_uid: tuple[str, float] | None = None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class ReaderBridge:
    def __init__(
        self,
        api: ApiClient,
        queue: TapQueue,
        monitors: Callable[[Callable[..., None], Callable[..., None]], Monitors],
        settings: BridgeSettings | None = None,
        reload_key: Callable[[], bool] | None = None,
    ) -> None:
        self.api = api
        self.queue = queue
        self.settings = settings or BridgeSettings()
        self._make_monitors = monitors
        self._reload_key = reload_key
        self.readers: dict[str, Reader] = {}
        self.desfire: DesfireConfig | None = None
        self.pcscd_up = False
        self._ignored: set[str] = set()  # readers whose card was there before monitoring began
        self._outcomes: dict[str, asyncio.Future[Outcome]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitors: Monitors | None = None
        self._probe_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcsc-probe")
        self.events: list[tuple[str, str]] = []  # (kind, detail) for the log and for tests
        self.backoff = 0.0

    # --- the pyscard side: called on pyscard's threads ---------------------------------------

    def _readers_from_thread(self, added: list[Any], removed: list[Any]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._readers_changed, added, removed)

    def _cards_from_thread(self, added: list[Any], removed: list[Any]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._cards_changed, added, removed)

    # --- the loop side -------------------------------------------------------------------

    def _event(self, kind: str, detail: str) -> None:
        self.events.append((kind, detail))
        del self.events[:-1000]
        log.info("%s: %s", kind, detail)

    def _readers_changed(self, added: list[Any], removed: list[Any]) -> None:
        for name in map(str, removed):
            reader = self.readers.pop(name, None)
            if reader is not None:
                reader.close()
                self._event("reader-removed", name)
        for name in map(str, added):
            self._reader(name)

    def _reader(self, name: str) -> Reader:
        reader = self.readers.get(name)
        if reader is None:
            reader = self.readers[name] = Reader(name)
            self._event("reader-added", name)
        return reader

    def _cards_changed(self, added: list[Any], removed: list[Any]) -> None:
        for card in removed:
            name = str(card.reader)
            if name in self._ignored:
                self._ignored.discard(name)
                self._event("card-removed", f"{name} (it was there before monitoring began)")
        for card in added:
            name = str(card.reader)
            if name in self._ignored:
                continue
            self._spawn(self.handle_tap(self._reader(name), card))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on(self, reader: Reader, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(reader.executor, fn, *args)

    async def handle_tap(self, reader: Reader, card: Any) -> Outcome | None:
        """One card put on a reader: read it, queue the tap, show what became of it."""
        tapped_at = time.time()
        try:
            connection, uid, challenge = await self._on(reader, self._read_card, card)
        except Exception as exc:
            self._event("read-failed", f"{reader.name}: {exc}")
            return None
        try:
            if reader.last_uid and reader.last_uid[0] == uid:
                if time.monotonic() - reader.last_uid[1] < self.settings.debounce_seconds:
                    self._event("debounced", f"{reader.name}: {masked(uid)}")
                    return None
            proof: dict[str, str] | None = None
            if challenge is not None:
                try:
                    proof = await self._desfire_proof(reader, connection, uid, challenge)
                except (Refused, cardio.CardError) as exc:
                    self._event("desfire-failed", f"{reader.name}: {masked(uid)}: {exc}")
                    with contextlib.suppress(Exception):
                        await self._on(reader, cardio.feedback, connection, Feedback.ERROR)
                    return Outcome(refused=exc if isinstance(exc, Refused) else None)
            key = "tap-" + uuid.uuid4().hex
            self.queue.add(QueuedTap(key, reader.name, uid, tapped_at, proof))
            reader.last_uid = (uid, time.monotonic())  # only a tap that counted is debounced
            self._event("tap", f"{reader.name}: {masked(uid)} {key}{' +desfire' if proof else ''}")
            outcome = await self._await_outcome(key)
            kind = outcome.feedback if outcome is not None else Feedback.QUEUED
            with contextlib.suppress(Exception):  # the reader may be gone; the tap is safe
                await self._on(reader, cardio.feedback, connection, kind)
            return outcome
        finally:
            with contextlib.suppress(Exception):
                await self._on(reader, connection.disconnect)

    def _read_card(self, card: Any) -> tuple[Any, str, bytes | None]:
        """In the reader's thread: connect, read the UID, start the DESFire challenge."""
        connection = card.createConnection()
        if connection is None:
            raise cardio.CardError(f"reader {card.reader} is gone")
        connection.connect()
        try:
            uid = cardio.read_uid(connection)
            desfire = self.desfire
            challenge = (
                cardio.desfire_challenge(connection, desfire.aid_wire, desfire.key_no)
                if desfire is not None
                else None
            )
        except Exception:
            with contextlib.suppress(Exception):
                connection.disconnect()
            raise
        return connection, uid, challenge

    async def _desfire_proof(
        self, reader: Reader, connection: Any, uid: str, challenge: bytes
    ) -> dict[str, str] | None:
        """Relay AuthenticateEV2First between the card and the server. Without the API the
        tap goes without proof (the server decides whether the UID alone is enough)."""
        try:
            auth_id, reader_response = await self.api.desfire_authenticate(uid, challenge)
        except (Unreachable, Unauthorized) as exc:
            self._event("desfire-offline", f"{reader.name}: {masked(uid)}: {exc}")
            return None
        card_response = await self._on(reader, cardio.desfire_finish, connection, reader_response)
        return {"authId": auth_id, "cardResponse": card_response.hex()}

    async def _await_outcome(self, key: str) -> Outcome | None:
        future = self._outcomes.setdefault(key, asyncio.get_running_loop().create_future())
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.feedback_wait)
        except TimeoutError:
            return None
        finally:
            self._outcomes.pop(key, None)

    # --- sending ---------------------------------------------------------------------------

    async def send_queued(self) -> bool:
        """Send every queued tap, oldest first. False when the API did not answer (the rest
        stays queued for the next round)."""
        for dropped in self.queue.drop_older_than(self.settings.max_tap_age):
            self._event("dropped", f"{dropped.key}: older than {self.settings.max_tap_age:.0f}s")
        for tap in self.queue.pending():
            try:
                paid = await self.api.reader_tap(
                    uid=tap.uid, key=tap.key, age_ms=tap.age_ms(), proof=tap.proof
                )
            except Refused as exc:
                self.queue.done(tap.key)
                self._event("refused", f"{tap.key}: {exc.code}")
                self._settle(tap.key, Outcome(refused=exc))
            except Unauthorized as exc:
                self.queue.attempt_failed(tap.key, str(exc))
                self._event("unauthorized", f"{tap.key}: terminal key refused ({exc})")
                if self._reload_key is not None and self._reload_key():
                    self._event("key-reloaded", "terminal key file changed; retrying")
                self._settle_waiting(Outcome(queued=True))
                return False
            except Unreachable as exc:
                self.queue.attempt_failed(tap.key, str(exc))
                self._event("unreachable", f"{tap.key}: {exc}")
                self._settle_waiting(Outcome(queued=True))
                return False
            else:
                self.queue.done(tap.key)
                self._event("paid", f"{tap.key}: {paid.payment_id} {paid.amount}")
                self._settle(tap.key, Outcome(paid=paid))
        return True

    def _settle(self, key: str, outcome: Outcome) -> None:
        future = self._outcomes.get(key)
        if future is not None and not future.done():
            future.set_result(outcome)

    def _settle_waiting(self, outcome: Outcome) -> None:
        for key in list(self._outcomes):
            self._settle(key, outcome)

    async def _sender(self) -> None:
        while not self._stopping.is_set():
            try:
                ok = await self.send_queued()
            except Exception:  # a bug or a disk error: keep the bridge alive, retry later
                log.exception("sending taps failed")
                ok = False
            if ok:
                self.backoff = 0.0
                timeout: float | None = None if not len(self.queue) else self.settings.backoff_min
            else:
                self.backoff = min(
                    self.settings.backoff_max, max(self.settings.backoff_min, self.backoff * 2)
                )
                timeout = self.backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    # --- pcscd and the API's view of us ----------------------------------------------------

    def status(self) -> str:
        names = ", ".join(sorted(self.readers)) or "none"
        pcsc = "up" if self.pcscd_up else "DOWN"
        desfire = "on" if self.desfire else "off"
        return f"pcscd {pcsc}; readers: {names}; queued taps: {len(self.queue)}; desfire {desfire}"

    async def _heartbeat(self) -> None:
        while not self._stopping.is_set():
            delay = self.settings.heartbeat_seconds
            try:
                self.desfire = await self.api.heartbeat(self.status())
            except (Unreachable, Unauthorized) as exc:
                self._event("heartbeat-failed", str(exc))
                delay = min(delay, 5.0)
            except Refused as exc:
                self._event("heartbeat-refused", str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def supervise_once(self) -> Probe:
        """Probe pcscd; (re)start the monitors when it is there and they are not alive."""
        loop = asyncio.get_running_loop()
        monitors = self._monitors
        assert monitors is not None
        probe = await loop.run_in_executor(self._probe_executor, monitors.probe)
        if not probe.pcscd:
            if self.pcscd_up:
                self._event("pcscd-down", probe.error or "no answer")
            self.pcscd_up = False
            if monitors.running:
                await loop.run_in_executor(self._probe_executor, monitors.stop)
            self._readers_changed([], list(self.readers))
            return probe
        if not self.pcscd_up:
            self._event("pcscd-up", f"{len(probe.readers)} readers")
        self.pcscd_up = True
        if not probe.monitors_alive:
            if monitors.running:
                self._event("monitors-restart", "pcscd was restarted or a monitor stopped")
                await loop.run_in_executor(self._probe_executor, monitors.stop)
                self._readers_changed([], list(self.readers))
            self._ignored = set(probe.present)
            await loop.run_in_executor(self._probe_executor, monitors.start)
        return probe

    async def _supervisor(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.supervise_once()
            except Exception:
                log.exception("pcsc supervision failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.probe_seconds)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._monitors = self._make_monitors(self._readers_from_thread, self._cards_from_thread)
        jobs = [
            self._spawn(self._supervisor()),
            self._spawn(self._sender()),
            self._spawn(self._heartbeat()),
        ]
        try:
            await self._stopping.wait()
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._monitors.running:
                await asyncio.get_running_loop().run_in_executor(
                    self._probe_executor, self._monitors.stop
                )
            for reader in list(self.readers.values()):
                reader.close()
            self._probe_executor.shutdown(wait=False)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
