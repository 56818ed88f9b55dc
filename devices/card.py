"""Talking to the card on a reader: blocking pyscard calls, run in the reader's worker thread.

Everything here takes a pyscard `CardConnection` (anything with `transmit(list[int])` returning
`(data, sw1, sw2)`), so tests fake the card exactly there.
"""

from __future__ import annotations

from typing import Any

from devices import apdu
from devices.apdu import Feedback, Response


class CardError(Exception):
    """The card did not answer as expected (taken away too early, not a card we read)."""


def transmit(connection: Any, command: list[int]) -> Response:
    data, sw1, sw2 = connection.transmit(list(command))
    return Response(bytes(data), sw1, sw2)


def read_uid(connection: Any) -> str:
    """The UID in upper-case hex (FF CA 00 00 00)."""
    answer = transmit(connection, apdu.GET_UID)
    if answer.sw != apdu.SW_OK or len(answer.data) not in (4, 7, 10):
        raise CardError(f"no UID: {answer}")
    return answer.data.hex().upper()


def desfire_challenge(connection: Any, aid_wire: bytes, key_no: int) -> bytes | None:
    """Select the application and start AuthenticateEV2First: the card's E(K, RndB).

    None when the card has no such application (not a DESFire card, or not ours): it is read
    by UID only, and the server decides whether that is enough.
    """
    selected = transmit(connection, apdu.select_application(aid_wire))
    if selected.sw != apdu.DESFIRE_OK:
        return None
    answer = transmit(connection, apdu.authenticate_ev2_first(key_no))
    if answer.sw != apdu.DESFIRE_MORE or len(answer.data) != 16:
        raise CardError(f"AuthenticateEV2First refused: {answer}")
    return answer.data


def desfire_finish(connection: Any, reader_response: bytes) -> bytes:
    """Pass the server's E(K, RndA || RndB') to the card; its E(K, TI || RndA' || caps)."""
    answer = transmit(connection, apdu.additional_frame(reader_response))
    if answer.sw != apdu.DESFIRE_OK or len(answer.data) != 32:
        raise CardError(f"AuthenticateEV2First part 2 refused: {answer}")
    return answer.data


def feedback(connection: Any, kind: Feedback) -> bool:
    """LED and buzzer on ACR122U-compatible readers; False (and no harm) elsewhere or when the
    card is already gone."""
    try:
        answer = transmit(connection, apdu.led_buzzer(kind))
    except Exception:  # any reader or card error: feedback is a courtesy
        return False
    return answer.sw1 == 0x90
