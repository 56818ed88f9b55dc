"""The bridge's GraphQL client: the same API as every other client, terminal key in the header.

Outcomes are sorted for the queue: `Refused` is an answer (a UserError: the tap is settled and
leaves the queue); `Unreachable` and `Unauthorized` are not (the tap stays queued).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

HEARTBEAT = """mutation($i: TerminalHeartbeatInput!) { terminalHeartbeat(input: $i) {
  terminal { id storeId } desfire { aid keyNo } serverTime errors { code message } } }"""
READER_TAP = """mutation($i: ReaderTapInput!) { readerTap(input: $i) {
  payment { id amount card { balance } } terminalCharge { id status }
  errors { code message field } } }"""
DESFIRE_AUTH = """mutation($i: ReaderDesfireAuthenticateInput!) {
  readerDesfireAuthenticate(input: $i) { authId readerResponse errors { code message } } }"""


class ApiError(Exception):
    pass


class Unreachable(ApiError):
    """No answer we can trust (connection refused, timeout, 5xx, internal error): try later."""


class Unauthorized(ApiError):
    """The terminal key was refused (rotated or revoked): nothing is sent until it changes."""


class Refused(ApiError):
    """The API answered with a business error: final for this request."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Paid:
    payment_id: str
    amount: int
    balance: int | None
    charge_id: str | None


@dataclass(frozen=True)
class DesfireConfig:
    aid_wire: bytes
    key_no: int


class ApiClient:
    def __init__(
        self,
        api_url: str,
        key: Callable[[], str],
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        app_version: str = "yikatong-reader",
    ) -> None:
        url = api_url.rstrip("/")
        self.url = url if url.endswith("/graphql") else url + "/graphql"
        self._key = key
        self.app_version = app_version
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, query: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self.url,
                json={"query": query, "variables": variables},
                headers={
                    "Authorization": f"Terminal {self._key()}",
                    "User-Agent": self.app_version,
                },
            )
        except (httpx.TransportError, OSError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Unreachable(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise Unreachable(f"HTTP {response.status_code}: not JSON") from exc
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or [] if e}
        if "UNAUTHENTICATED" in codes or "FORBIDDEN" in codes:
            raise Unauthorized(", ".join(sorted(c for c in codes if c)))
        data = (body.get("data") or {}).get(field)
        if codes or data is None:
            raise Unreachable(f"HTTP {response.status_code}: {body.get('errors')}")
        errors = data.get("errors") or []
        if errors:
            raise Refused(str(errors[0]["code"]), str(errors[0].get("message", "")))
        result: dict[str, Any] = data
        return result

    async def heartbeat(self, reader_status: str) -> DesfireConfig | None:
        data = await self._call(
            HEARTBEAT,
            {"i": {"appVersion": self.app_version[:40], "readerStatus": reader_status[:200]}},
            "terminalHeartbeat",
        )
        desfire = data.get("desfire")
        if not desfire:
            return None
        aid = int(desfire["aid"], 16)
        return DesfireConfig(aid_wire=aid.to_bytes(3, "little"), key_no=int(desfire["keyNo"]))

    async def desfire_authenticate(self, uid: str, card_challenge: bytes) -> tuple[str, bytes]:
        data = await self._call(
            DESFIRE_AUTH,
            {"i": {"uid": uid, "cardChallenge": card_challenge.hex()}},
            "readerDesfireAuthenticate",
        )
        return str(data["authId"]), bytes.fromhex(data["readerResponse"])

    async def reader_tap(
        self, *, uid: str, key: str, age_ms: int, proof: dict[str, str] | None
    ) -> Paid:
        data = await self._call(
            READER_TAP,
            {
                "i": {
                    "uid": uid,
                    "idempotencyKey": key,
                    "tapAgeMs": max(0, min(age_ms, 2**31 - 1)),
                    "desfireProof": proof,
                }
            },
            "readerTap",
        )
        payment = data["payment"]
        charge = data.get("terminalCharge") or {}
        card = payment.get("card") or {}
        return Paid(
            payment_id=str(payment["id"]),
            amount=int(payment["amount"]),
            balance=card.get("balance"),
            charge_id=charge.get("id"),
        )
