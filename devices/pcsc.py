"""pyscard's ReaderMonitor and CardMonitor, restartable.

pyscard's monitors run their observers on pyscard's own threads. Ours only hand the event to
the asyncio loop (`loop.call_soon_threadsafe`), so no bridge state is touched from those
threads.

They do not survive pcscd going away (pyscard 2.x): the card monitoring thread stops on
SCARD_E_NO_SERVICE, or keeps failing on a context the restarted daemon no longer knows, and
the reader monitoring thread stops on the first error. So `PcscMonitors` can be stopped and
started again: `probe()` (called every second by the bridge, in a thread) answers whether
pcscd is there and whether the monitors are still alive on a context pcscd still knows; the
bridge restarts them when not. pyscard's CardMonitor and its thread are singletons, so a restart
cancels the blocked wait (SCardCancel), joins the thread and forgets the singletons; cards found
on the readers at that moment are reported in `present`, so a card left lying on a reader is
not taken for a new tap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("yikatong.reader")

Handler = Callable[[list[Any], list[Any]], None]


@dataclass
class Probe:
    pcscd: bool  # the daemon answers
    readers: list[str] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # readers with a card in the field
    monitors_alive: bool = False
    error: str | None = None


class PcscMonitors:
    """Starts pyscard's monitors with observers that forward to `on_readers` / `on_cards`."""

    def __init__(self, on_readers: Handler, on_cards: Handler, reader_poll: float = 1.0) -> None:
        from smartcard.CardMonitoring import CardObserver
        from smartcard.ReaderMonitoring import ReaderObserver

        class _Readers(ReaderObserver):  # type: ignore[misc]
            def update(self, observable: Any, handlers: Any) -> None:
                added, removed = handlers
                on_readers(list(added), list(removed))

        class _Cards(CardObserver):  # type: ignore[misc]
            def update(self, observable: Any, handlers: Any) -> None:
                added, removed = handlers
                on_cards(list(added), list(removed))

        self._reader_observer = _Readers()
        self._card_observer = _Cards()
        self._reader_poll = reader_poll
        self._reader_monitor: Any = None
        self._card_monitor: Any = None
        self._context: Any = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._card_monitor is not None

    def start(self) -> None:
        from smartcard.CardMonitoring import CardMonitor
        from smartcard.ReaderMonitoring import ReaderMonitor
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCardEstablishContext

        with self._lock:
            if self._card_monitor is not None:
                return
            hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
            self._context = context if hresult == SCARD_S_SUCCESS else None
            self._reader_monitor = ReaderMonitor(period=self._reader_poll)
            self._reader_monitor.addObserver(self._reader_observer)
            self._card_monitor = CardMonitor()
            self._card_monitor.addObserver(self._card_observer)

    def stop(self) -> None:
        from smartcard.CardMonitoring import CardMonitor, CardMonitoringThread
        from smartcard.scard import SCardCancel, SCardReleaseContext

        with self._lock:
            if self._reader_monitor is not None:
                try:
                    self._reader_monitor.deleteObserver(self._reader_observer)
                except Exception as exc:  # its thread may already be gone
                    log.debug("reader monitor stop: %s", exc)
                self._reader_monitor = None
            if self._card_monitor is not None:
                try:
                    self._card_monitor.deleteObserver(self._card_observer)
                except Exception as exc:
                    log.debug("card monitor stop: %s", exc)
                self._card_monitor = None
            thread = CardMonitoringThread.instance
            if thread is not None:
                thread.stop()
                request = getattr(thread, "cardrequest", None)
                pcsc_request = getattr(request, "pcsccardrequest", None)
                hcontext = getattr(pcsc_request, "hcontext", None)
                if hcontext is not None:
                    try:
                        SCardCancel(hcontext)  # wake it from SCardGetStatusChange
                    except Exception as exc:
                        log.debug("cancel: %s", exc)
                thread.join(2.0)
                if thread.is_alive():
                    log.warning("pyscard's card monitoring thread did not stop; left behind")
            CardMonitoringThread.instance = None
            CardMonitor.instance = None
            if self._context is not None:
                try:
                    SCardReleaseContext(self._context)
                except Exception as exc:
                    log.debug("release: %s", exc)
                self._context = None

    def _threads_alive(self) -> bool:
        from smartcard.CardMonitoring import CardMonitoringThread

        card_thread = CardMonitoringThread.instance
        reader_thread = getattr(self._reader_monitor, "rmthread", None)
        card_ok = card_thread is not None and card_thread.is_alive()
        reader_ok = reader_thread is not None and not reader_thread.stopEvent.is_set()
        return card_ok and reader_ok

    def probe(self) -> Probe:
        """Blocking; run it in a thread. A fresh context tells whether pcscd answers; the
        monitors' own context tells whether pcscd is the one they started with."""
        from smartcard.scard import (
            SCARD_E_NO_READERS_AVAILABLE,
            SCARD_S_SUCCESS,
            SCARD_SCOPE_USER,
            SCARD_STATE_PRESENT,
            SCARD_STATE_UNAWARE,
            SCardEstablishContext,
            SCardGetErrorMessage,
            SCardGetStatusChange,
            SCardListReaders,
            SCardReleaseContext,
        )

        hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
        if hresult != SCARD_S_SUCCESS:
            return Probe(pcscd=False, error=SCardGetErrorMessage(hresult))
        try:
            hresult, readers = SCardListReaders(context, [])
            if hresult == SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            elif hresult != SCARD_S_SUCCESS:
                return Probe(pcscd=False, error=SCardGetErrorMessage(hresult))
            present: set[str] = set()
            if readers:
                hresult, states = SCardGetStatusChange(
                    context, 0, [(r, SCARD_STATE_UNAWARE) for r in readers]
                )
                if hresult == SCARD_S_SUCCESS:
                    present = {name for name, state, _ in states if state & SCARD_STATE_PRESENT}
        finally:
            SCardReleaseContext(context)
        alive = False
        with self._lock:
            if self._card_monitor is not None and self._threads_alive():
                alive = self._context is not None and self._context_valid()
        return Probe(pcscd=True, readers=list(readers), present=present, monitors_alive=alive)

    def _context_valid(self) -> bool:
        """The monitors' context still answers (pcscd was not restarted under it)."""
        from smartcard.scard import SCARD_E_NO_READERS_AVAILABLE, SCARD_S_SUCCESS, SCardListReaders

        hresult, _ = SCardListReaders(self._context, [])
        return hresult in (SCARD_S_SUCCESS, SCARD_E_NO_READERS_AVAILABLE)
