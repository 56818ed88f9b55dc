"""Card numbers: 19 digits, the last a Luhn check digit; physical card UIDs as keyed hashes."""

from __future__ import annotations

import re
import secrets

from domain.identity.secrets import keyed_hash

CARD_PREFIX = "8"  # no bank BIN starts with 8 for our purposes; keeps numbers recognisable


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    body = CARD_PREFIX + "".join(str(secrets.randbelow(10)) for _ in range(17))
    return body + luhn_digit(body)


def normalize_uid(uid: str) -> str | None:
    """A 4-, 7- or 10-byte ISO 14443 UID in hex (separators allowed)."""
    hexa = re.sub(r"[\s:-]", "", uid).upper()
    if re.fullmatch(r"[0-9A-F]+", hexa) and len(hexa) in (8, 14, 20):
        return hexa
    return None


def uid_hash(uid: str) -> str:
    return keyed_hash(uid, "card-uid")
