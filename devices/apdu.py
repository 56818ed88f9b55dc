"""The APDUs the bridge sends, and what their answers mean.

PC/SC readers answer the pseudo-APDU FF CA 00 00 00 (PC/SC part 3, Get Data) with the UID of
the contactless card in the field. ACS readers (ACR122U and its compatibles) take
FF 00 40 P2 04 T1 T2 R B for their bi-colour LED and buzzer; other readers refuse it, which is
fine. DESFire native commands go wrapped in ISO 7816-4: 90 <cmd> 00 00 Lc <data> 00, the card's
status in SW2 after SW1 = 91.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]

SW_OK = (0x90, 0x00)
DESFIRE_OK = (0x91, 0x00)
DESFIRE_MORE = (0x91, 0xAF)  # additional frame expected


class Feedback(Enum):
    """What the reader shows and sounds after a tap."""

    SUCCESS = "success"  # paid
    ERROR = "error"  # refused, or the card could not be read
    QUEUED = "queued"  # read, kept, will be sent when the API answers


# ACR122U LED state control (P2): bit0/1 final red/green, bit2/3 red/green mask, bit4/5
# initial red/green blinking state, bit6/7 red/green blinking mask. Data: T1, T2 in 100 ms,
# repetitions, buzzer link (1: during T1).
_LED = {
    Feedback.SUCCESS: (0xA8, 0x05, 0x01, 0x01, 0x01),  # green for 500 ms, one beep
    Feedback.ERROR: (0x54, 0x02, 0x02, 0x03, 0x01),  # red three times, three beeps
    Feedback.QUEUED: (0xFC, 0x02, 0x02, 0x02, 0x01),  # red and green (orange) twice
}


def led_buzzer(kind: Feedback) -> list[int]:
    p2, t1, t2, repeat, buzzer = _LED[kind]
    return [0xFF, 0x00, 0x40, p2, 0x04, t1, t2, repeat, buzzer]


def select_application(aid_wire: bytes) -> list[int]:
    """DESFire SelectApplication (0x5A); the AID least significant byte first."""
    return [0x90, 0x5A, 0x00, 0x00, 0x03, *aid_wire, 0x00]


def authenticate_ev2_first(key_no: int) -> list[int]:
    """DESFire AuthenticateEV2First (0x71), part 1: key number, no PCD capabilities."""
    return [0x90, 0x71, 0x00, 0x00, 0x02, key_no & 0xFF, 0x00, 0x00]


def additional_frame(data: bytes) -> list[int]:
    """DESFire additional frame (0xAF): the next part of a command."""
    return [0x90, 0xAF, 0x00, 0x00, len(data), *data, 0x00]


@dataclass(frozen=True)
class Response:
    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> tuple[int, int]:
        return (self.sw1, self.sw2)

    def __str__(self) -> str:
        return f"{self.data.hex().upper()} {self.sw1:02X}{self.sw2:02X}"
