"""Why a provider notification was refused, and the HTTP status that tells the provider so.

Both WeChat Pay and Alipay retry a notification until they get their success answer, so the
status only matters for logs and for the provider's console; what matters is never answering
success for a notification we did not accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # The request does not prove it comes from the provider (401).
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    # WeChat deliberately sends wrong signatures (签名探测流量) to check that we verify.
    SIGNATURE_PROBE = "SIGNATURE_PROBE"
    SIGN_TYPE_UNSUPPORTED = "SIGN_TYPE_UNSUPPORTED"
    UNKNOWN_SERIAL = "UNKNOWN_SERIAL"
    TIMESTAMP_OUT_OF_WINDOW = "TIMESTAMP_OUT_OF_WINDOW"
    # Authentic but not something we can act on (400).
    MALFORMED = "MALFORMED"
    AMOUNT_INVALID = "AMOUNT_INVALID"
    MERCHANT_MISMATCH = "MERCHANT_MISMATCH"
    # Signed by WeChat yet undecryptable with our APIv3 key: our configuration is wrong (500).
    DECRYPT_FAILED = "DECRYPT_FAILED"


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SIGNATURE_MISSING: 401,
    ErrorCode.SIGNATURE_INVALID: 401,
    ErrorCode.SIGNATURE_PROBE: 401,
    ErrorCode.SIGN_TYPE_UNSUPPORTED: 401,
    ErrorCode.UNKNOWN_SERIAL: 401,
    ErrorCode.TIMESTAMP_OUT_OF_WINDOW: 401,
    ErrorCode.MALFORMED: 400,
    ErrorCode.AMOUNT_INVALID: 400,
    ErrorCode.MERCHANT_MISMATCH: 400,
    ErrorCode.DECRYPT_FAILED: 500,
}


class ChannelError(Exception):
    """A notification we refuse. `message` is safe to send back to the provider and to log."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return http_status(self.code)


def http_status(code: ErrorCode) -> int:
    return _STATUS.get(code, 500)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What the HTTP layer sends back to the provider; `content_type` is None for no body."""

    status: int
    body: bytes
    content_type: str | None
