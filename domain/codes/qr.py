"""QR images of payloads (segno): PNG for the /qr route, SVG for it and for GraphQL."""

from __future__ import annotations

import io
from functools import lru_cache

import segno

MAX_PAYLOAD = 512  # the longest EMVCo payload; payment codes are 18 digits
MIN_SCALE, MAX_SCALE, DEFAULT_SCALE = 1, 16, 6


def symbol(payload: str) -> segno.QRCode:
    """Error correction M, as EMVCo recommends; byte mode in UTF-8 for anything not numeric."""
    if not payload or len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a QR payload is 1-{MAX_PAYLOAD} characters")
    return segno.make_qr(payload, error="m", boost_error=False)


@lru_cache(maxsize=512)
def render(payload: str, kind: str, scale: int = DEFAULT_SCALE) -> bytes:
    """`png` or `svg` bytes; the same payload always gives the same image (hence the cache)."""
    if kind not in ("png", "svg"):
        raise ValueError(f"unknown image kind {kind!r}")
    scale = min(max(scale, MIN_SCALE), MAX_SCALE)
    out = io.BytesIO()
    if kind == "png":
        symbol(payload).save(out, kind="png", scale=scale, border=4)
    else:
        symbol(payload).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue()


def svg(payload: str, scale: int = 4) -> str:
    return render(payload, "svg", scale).decode("utf-8")
