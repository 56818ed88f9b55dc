"""The per-request context: who is asking, in which language, with which loaders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from domain.actor import Actor, Origin, Role
from domain.errors import unauthenticated
from domain.identity.tokens import decode_access_token
from domain.merchants.service import authenticate_terminal


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]: ...


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    broker: Broker
    request_id: str
    lang: str = "zh"
    viewer: Actor | None = None
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None
    loaders: dict[str, Any] = field(default_factory=dict)
    max_page_size: int = 100

    @property
    def ip(self) -> str | None:
        client = self.request.client
        return client.host if client else None

    @property
    def origin(self) -> Origin:
        return Origin(
            ip=self.ip,
            request_id=self.request_id,
            user_agent=self.request.headers.get("user-agent"),
        )

    def require_viewer(self) -> Actor:
        if self.viewer is None:
            raise unauthenticated(self.auth_error or "Authentication required")
        return self.viewer


def language(accept_language: str | None) -> str:
    """Chinese unless the client prefers English."""
    if not accept_language:
        return "zh"
    first = accept_language.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"


async def authenticate(
    authorization: str | None, ip: str | None, request_id: str
) -> tuple[Actor | None, str | None]:
    """The actor behind an Authorization header, or (None, why) when it is absent or invalid."""
    if not authorization:
        return None, None
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and credential:
        claims = decode_access_token(credential)
        if claims is None:
            return None, "Invalid or expired access token"
        return (
            Actor(
                id=claims.user_id,
                role=claims.role,
                merchant_id=claims.merchant_id,
                store_ids=claims.store_ids,
                region_code=claims.region_code,
                ip=ip,
                request_id=request_id,
            ),
            None,
        )
    if scheme == "terminal" and credential:
        terminal = await authenticate_terminal(credential)
        if terminal is None:
            return None, "Invalid or revoked terminal key"
        return (
            Actor(
                id=terminal.id,
                role=Role.TERMINAL,
                merchant_id=terminal.merchant_id,
                store_ids=(terminal.store_id,),
                ip=ip,
                request_id=request_id,
            ),
            None,
        )
    return None, "Unsupported authorization scheme"


def new_request_id(header: str | None) -> str:
    if header and 8 <= len(header) <= 64 and header.replace("-", "").isalnum():
        return header
    return uuid.uuid4().hex
