"""Opaque, prefixed identifiers (`card_...`, `mch_...`).

The body is 10 characters of millisecond time and 16 of randomness in Crockford base32, so ids
sort by creation time (cursors and index locality) but cannot be guessed.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

PREFIXES = {
    "usr": "user",
    "mch": "merchant",
    "sto": "store",
    "trm": "terminal",
    "rtk": "refresh token",
    "otp": "one-time code",
    "org": "organisation",
}


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(ms, 10)}{_b32(rand, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    """A well-formed id of this kind (cheap shape check before any query)."""
    if not value.startswith(prefix + "_"):
        return False
    body = value[len(prefix) + 1 :]
    return len(body) == 26 and all(c in _ALPHABET for c in body)
