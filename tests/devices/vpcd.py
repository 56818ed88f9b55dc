"""A virtual card on vpcd (vsmartcard's pcscd driver): connecting is a tap, closing a removal.

vpcd listens for one card per reader (TCP 35963 for "Virtual PCD 00 00", 35964 for "... 00 01").
Every message either way is a 2-byte big-endian length and a payload. From vpcd, a 1-byte payload
is a control code (0 power off, 1 power on, 2 reset, 4 send the ATR); anything else is a command
APDU. The card answers the ATR request with its ATR and an APDU with data + SW; the other
control codes get no answer.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

from tests.devices.cards import VirtualCard

PORTS = (35963, 35964)
READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        data += chunk
    return data


class VpcdCard:
    def __init__(self, card: VirtualCard, port: int, host: str = "127.0.0.1") -> None:
        self.card = card
        self.port = port
        self.host = host
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.powered = False

    def insert(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=5)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                (length,) = struct.unpack(">H", _recv_exactly(sock, 2))
                payload = _recv_exactly(sock, length)
                if length == 1:
                    code = payload[0]
                    if code == 4:
                        self._send(sock, self.card.atr)
                    elif code in (0, 1, 2):
                        self.powered = code != 0
                        self.card.reset()
                    continue
                self._send(sock, self.card.apdu(payload))
        except (OSError, ConnectionError):
            return

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> None:
        sock.sendall(struct.pack(">H", len(data)) + data)


@contextlib.contextmanager
def tapped(card: VirtualCard, port: int) -> Iterator[VpcdCard]:
    """The card lies on the reader inside the block."""
    virtual = VpcdCard(card, port)
    virtual.insert()
    try:
        yield virtual
    finally:
        virtual.remove()
