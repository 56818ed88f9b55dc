"""GET /qr/<payload>.png and /qr/<payload>.svg: the QR image of a payload (segno).

The payload is URL-encoded in the path (at most 512 characters decoded, the longest EMVCo
payload); the image depends on nothing else, so it is cached for a year and has a strong ETag.
Nothing is looked up: anyone may render any payload, which is why this needs no login. Payment
codes (付款码) are best drawn by the app itself so they never travel in a URL.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from domain.codes import qr

MEDIA = {"png": "image/png", "svg": "image/svg+xml"}
CACHE = "public, max-age=31536000, immutable"


async def qr_image(request: Request) -> Response:
    path: str = request.path_params["payload"]
    payload, dot, kind = path.rpartition(".")
    if not dot or kind not in MEDIA or not payload:
        return PlainTextResponse("GET /qr/<payload>.png or /qr/<payload>.svg", status_code=404)
    if len(payload) > qr.MAX_PAYLOAD:
        return PlainTextResponse(f"payload over {qr.MAX_PAYLOAD} characters", status_code=414)
    scale_arg = request.query_params.get("scale", str(qr.DEFAULT_SCALE))
    if not scale_arg.isdigit() or not qr.MIN_SCALE <= int(scale_arg) <= qr.MAX_SCALE:
        return PlainTextResponse(
            f"scale is {qr.MIN_SCALE}-{qr.MAX_SCALE} (pixels per module)", status_code=400
        )
    scale = int(scale_arg)
    etag = '"' + hashlib.sha256(f"{kind}:{scale}:{payload}".encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    try:
        body = qr.render(payload, kind, scale)
    except ValueError as exc:  # segno: data too large for any QR version
        return PlainTextResponse(str(exc), status_code=400)
    return Response(body, media_type=MEDIA[kind], headers=headers)


routes = [Route("/qr/{payload:path}", qr_image, methods=["GET", "HEAD"])]
