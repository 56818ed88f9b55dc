"""Virtual contactless cards that answer APDUs as a card behind a PC/SC reader does.

They are played through the pyscard boundary in unit tests (tests/devices/fakes.py) and through
vpcd, the real pcscd driver, in the integration test (tests/devices/vpcd.py). The DESFire side
of AuthenticateEV2First is written here from the datasheet's description, independently of
the server's code (domain/terminals/desfire.py), so the two check each other.
"""

from __future__ import annotations

import os
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SW_OK = b"\x90\x00"
# PC/SC part 3 ATRs of contactless cards as a reader reports them.
ATR_MIFARE_CLASSIC_1K = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
ATR_DESFIRE = bytes.fromhex("3B8180018080")


def _aes(key: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


class VirtualCard:
    atr: bytes

    def __init__(self, uid: bytes) -> None:
        self.uid = uid
        self.commands: list[bytes] = []
        self.feedback: list[bytes] = []  # LED/buzzer commands (the reader's, answered here)
        self.lock = threading.Lock()

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    def apdu(self, command: bytes) -> bytes:
        with self.lock:
            self.commands.append(command)
            if command[:2] == b"\xff\xca":  # Get Data: UID
                return self.uid + SW_OK
            if command[:3] == b"\xff\x00\x40":  # ACR122U LED and buzzer
                self.feedback.append(command)
                return b"\x90\x00"
            return self.answer(command)

    def reset(self) -> None:
        """Power cycle (vpcd control 0/1/2): volatile state goes."""

    def answer(self, command: bytes) -> bytes:
        return b"\x6a\x81"  # function not supported


class MifareClassic(VirtualCard):
    """A MIFARE Classic 1K: the reader gives its UID and nothing else here."""

    atr = ATR_MIFARE_CLASSIC_1K


class DesfireEV2(VirtualCard):
    """A DESFire EV2 with one AES application, its key `key_no` personalised with `key`."""

    atr = ATR_DESFIRE

    def __init__(self, uid: bytes, aid_wire: bytes, key_no: int, key: bytes) -> None:
        super().__init__(uid)
        self.aid_wire = aid_wire
        self.key_no = key_no
        self.key = key
        self.authenticated = 0
        self.reset()

    def reset(self) -> None:
        self.selected = False
        self.rnd_b: bytes | None = None

    def answer(self, command: bytes) -> bytes:
        if len(command) < 5 or command[0] != 0x90:
            return b"\x6e\x00"  # class not supported
        ins, data = command[1], command[5 : 5 + command[4]]
        if ins == 0x5A:  # SelectApplication
            self.selected = data == self.aid_wire
            self.rnd_b = None
            return b"\x91\x00" if self.selected else b"\x91\xa0"
        if ins == 0x71:  # AuthenticateEV2First, part 1
            if not self.selected or len(data) < 2 or data[0] != self.key_no:
                return b"\x91\x40"  # no such key
            self.rnd_b = os.urandom(16)
            return _aes(self.key, self.rnd_b, True) + b"\x91\xaf"
        if ins == 0xAF and self.rnd_b is not None:  # part 2
            rnd_b, self.rnd_b = self.rnd_b, None
            if len(data) != 32:
                return b"\x91\x7e"  # length error
            plain = _aes(self.key, data, False)
            rnd_a, rnd_b_rotated = plain[:16], plain[16:]
            if rnd_b_rotated != rnd_b[1:] + rnd_b[:1]:
                return b"\x91\xae"  # authentication error: the other side lacks the key
            self.authenticated += 1
            ti, caps = os.urandom(4), bytes(12)  # PDcap2 || PCDcap2
            return _aes(self.key, ti + rnd_a[1:] + rnd_a[:1] + caps, True) + b"\x91\x00"
        return b"\x91\x1c"  # illegal command


class Direct:
    """A connection straight to a virtual card (no reader, no pyscard): `transmit` as pyscard's."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]:
        answer = self.card.apdu(bytes(command))
        return list(answer[:-2]), answer[-2], answer[-1]
