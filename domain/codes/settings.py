"""Settings of payment codes.

The two-digit prefix routes a scanned 18-digit code to Yikatong at an aggregating till, so it must
not be one that WeChat Pay (10-15), Alipay (25-30) or UnionPay (62) use. It comes from
`YIKATONG_PAYMENT_CODE_PREFIX` (default 88) and is checked when the module loads, so a bad
value stops the server at start rather than at the first payment.
"""

from __future__ import annotations

import os

DEFAULT_PREFIX = "88"
# WeChat Pay 付款码 10-15, Alipay 25-30, UnionPay 62.
RESERVED = frozenset({*(f"{n}" for n in range(10, 16)), *(f"{n}" for n in range(25, 31)), "62"})

CODE_TTL_SECONDS = 60  # an online code lives at most this long
CREATE_PER_MINUTE = 30  # codes one consumer may create a minute
ATTEMPTS_PER_MINUTE = 60  # codes one terminal or staff member may present a minute
FAILURES_PER_ACTOR = 10  # made-up codes one terminal or staff member may present per window
FAILURES_PER_CARD = 5  # wrong offline codes for one card per window
FAILURE_WINDOW_SECONDS = 600
DEVICES_PER_CARD = 5


def check_prefix(prefix: str) -> str:
    if len(prefix) != 2 or not prefix.isdigit() or not prefix.isascii():
        raise ValueError(f"payment code prefix must be two digits, not {prefix!r}")
    if prefix in RESERVED:
        raise ValueError(
            f"payment code prefix {prefix} is taken by WeChat Pay (10-15), Alipay (25-30) or"
            " UnionPay (62)"
        )
    return prefix


_prefix = check_prefix(os.environ.get("YIKATONG_PAYMENT_CODE_PREFIX", DEFAULT_PREFIX))


def prefix() -> str:
    return _prefix


def configure(code_prefix: str) -> None:
    """Set the prefix (the composition root or a test); checked like the environment's."""
    global _prefix
    _prefix = check_prefix(code_prefix)
