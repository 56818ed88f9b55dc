"""Scalars: `Fen` (integer fen, 64-bit) and the ISO 8601 `DateTime` strawberry provides."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

INT64_MAX = 2**63 - 1

Fen = NewType("Fen", int)


def _parse_fen(value: object) -> int:
    # bool is an int in Python; a client sending true for an amount is a bug, not 1 fen.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Fen must be an integer number of fen (1 yuan = 100 fen)")
    if not -INT64_MAX <= value <= INT64_MAX:
        raise ValueError("Fen is out of the 64-bit range")
    return value


FEN_SCALAR = strawberry.scalar(
    name="Fen",
    description="An amount of money in fen (分), 1 yuan = 100 fen; a 64-bit integer JSON number.",
    serialize=int,
    parse_value=_parse_fen,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {Fen: FEN_SCALAR}
