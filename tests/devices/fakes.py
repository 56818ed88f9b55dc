"""Fakes at the pyscard boundary, and only there: a `CardConnection` subclass whose card is a
virtual card (tests/devices/cards.py), a pyscard `Card` that opens it, and monitors that report
readers and cards from their own thread as pyscard's do."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from smartcard.Card import Card
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException

from devices.pcsc import Probe
from tests.devices.cards import VirtualCard


class FakeConnection(CardConnection):  # type: ignore[misc]
    def __init__(self, reader: str, card: VirtualCard, field: FakeField) -> None:
        super().__init__(reader)
        self.card = card
        self.field = field
        self.threads: list[str] = []

    def connect(self, protocol: Any = None, mode: Any = None, disposition: Any = None) -> None:
        if not self.field.has(self.card):
            raise CardConnectionException("no card in the field")
        super().connect(protocol, mode, disposition)

    def disconnect(self) -> None:
        super().disconnect()

    def getATR(self) -> list[int]:
        return list(self.card.atr)

    def doTransmit(self, command: list[int], protocol: Any = None) -> tuple[list[int], int, int]:
        self.threads.append(threading.current_thread().name)
        if not self.field.has(self.card):
            raise CardConnectionException("card removed")
        answer = self.card.apdu(bytes(command))
        return list(answer[:-2]), answer[-2], answer[-1]


class FakeField:
    """Which virtual cards are on which reader right now."""

    def __init__(self) -> None:
        self.cards: dict[str, VirtualCard] = {}
        self.connections: list[FakeConnection] = []

    def has(self, card: VirtualCard) -> bool:
        return any(c is card for c in self.cards.values())


class FakeCard(Card):  # type: ignore[misc]
    def __init__(self, reader: str, card: VirtualCard, field: FakeField) -> None:
        super().__init__(reader, list(card.atr))
        self.virtual = card
        self.field = field

    def createConnection(self) -> FakeConnection:
        connection = FakeConnection(self.reader, self.virtual, self.field)
        self.field.connections.append(connection)
        return connection


class FakeMonitors:
    """Stands in for pyscard's ReaderMonitor + CardMonitor (devices.pcsc.PcscMonitors)."""

    instances: list[FakeMonitors] = []

    def __init__(
        self,
        on_readers: Callable[[list[Any], list[Any]], None],
        on_cards: Callable[[list[Any], list[Any]], None],
    ) -> None:
        self.on_readers = on_readers
        self.on_cards = on_cards
        self.running = False
        self.pcscd = True
        self.alive = True
        self.readers = ["ACS ACR122U PICC Interface 00 00"]
        self.field = FakeField()
        self.starts = 0
        self.stops = 0
        FakeMonitors.instances.append(self)

    def _from_thread(self, fn: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, name="fake-pyscard-monitor")
        thread.start()
        thread.join()

    def start(self) -> None:
        self.running = True
        self.alive = True
        self.starts += 1
        self._from_thread(self.on_readers, list(self.readers), [])

    def stop(self) -> None:
        self.running = False
        self.stops += 1

    def probe(self) -> Probe:
        if not self.pcscd:
            return Probe(pcscd=False, error="Service not available.")
        present = {name for name in self.field.cards}
        return Probe(
            pcscd=True,
            readers=list(self.readers),
            present=present,
            monitors_alive=self.running and self.alive,
        )

    def put(self, card: VirtualCard, reader: str | None = None) -> FakeCard:
        """A card enters a reader's field: reported from a thread that is not the loop's."""
        reader = reader or self.readers[0]
        self.field.cards[reader] = card
        fake = FakeCard(reader, card, self.field)
        if self.running:
            self._from_thread(self.on_cards, [fake], [])
        return fake

    def take(self, reader: str | None = None) -> None:
        reader = reader or self.readers[0]
        card = self.field.cards.pop(reader, None)
        if card is not None and self.running:
            self._from_thread(self.on_cards, [], [FakeCard(reader, card, self.field)])

    def unplug(self, reader: str) -> None:
        self.readers.remove(reader)
        self.field.cards.pop(reader, None)
        self._from_thread(self.on_readers, [], [reader])

    def plug(self, reader: str) -> None:
        self.readers.append(reader)
        self._from_thread(self.on_readers, [reader], [])
