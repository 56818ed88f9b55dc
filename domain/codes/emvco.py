"""EMVCo merchant-presented QR payloads (EMV QRCPS Merchant-Presented Mode v1.1).

A payload is a string of data objects, each a two-digit ID, a two-digit length and the value; the
length counts characters (the alternate-language template 64 may hold Chinese). It starts with
`000201` and ends with `6304` plus the CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no
reflection, no final XOR) of the UTF-8 bytes of everything before the four hex digits, `6304`
included, in upper case. Templates (26-51, 62, 64) hold data objects of the same shape.
"""

from __future__ import annotations

MAX_PAYLOAD = 512  # characters; longer payloads are refused before parsing


class EmvError(ValueError):
    """A payload that is not well-formed EMVCo, or whose CRC does not match."""


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE; its check value, of b"123456789", is 0x29B1."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def tlv(tag: str, value: str) -> str:
    """One data object."""
    if len(tag) != 2 or not tag.isdigit():
        raise ValueError(f"EMVCo ids are two digits, not {tag!r}")
    if not 1 <= len(value) <= 99:
        raise ValueError(f"EMVCo values are 1-99 characters ({tag}: {len(value)})")
    return f"{tag}{len(value):02d}{value}"


def with_crc(body: str) -> str:
    """Close a payload: `6304` and the CRC over everything up to and including it."""
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('utf-8')):04X}"


def encode(objects: list[tuple[str, str]]) -> str:
    return with_crc("".join(tlv(tag, value) for tag, value in objects))


def parse_objects(data: str) -> list[tuple[str, str]]:
    """The data objects of a payload or template, in order; raises EmvError if malformed."""
    out = []
    i = 0
    while i < len(data):
        head = data[i : i + 4]
        if len(head) < 4 or not head.isdigit() or not head.isascii():
            raise EmvError(f"malformed data object at {i}")
        length = int(head[2:])
        value = data[i + 4 : i + 4 + length]
        if length == 0 or len(value) != length:
            raise EmvError(f"data object {head[:2]} is cut short")
        out.append((head[:2], value))
        i += 4 + length
    return out


def template(value: str) -> dict[str, str]:
    objects = parse_objects(value)
    found = dict(objects)
    if len(found) != len(objects):
        raise EmvError("a data object appears twice in a template")
    return found


def decode(payload: str) -> dict[str, str]:
    """The top-level data objects of a payload after checking its shape and CRC."""
    if len(payload) > MAX_PAYLOAD:
        raise EmvError("payload too long")
    objects = parse_objects(payload)
    if not objects or objects[0] != ("00", "01"):
        raise EmvError("a payload starts with 000201")
    tag, crc = objects[-1]
    if tag != "63" or len(crc) != 4 or not payload.endswith("6304" + crc):
        raise EmvError("a payload ends with the CRC, 6304 and four hex digits")
    if crc != crc.upper() or any(c not in "0123456789ABCDEF" for c in crc):
        raise EmvError("the CRC is four upper-case hex digits")
    if int(crc, 16) != crc16_ccitt_false(payload[:-4].encode("utf-8")):
        raise EmvError("CRC mismatch")
    found = dict(objects)
    if len(found) != len(objects):
        raise EmvError("a data object appears twice")
    return found
