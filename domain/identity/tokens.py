"""JWT access tokens: HS256 pinned, short-lived, the role and tenant in the claims."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from domain import clock, config
from domain.actor import Role

ALGORITHM = "HS256"
ISSUER = "yikatong"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    role: Role
    merchant_id: str | None
    store_ids: tuple[str, ...]
    region_code: str | None


def issue_access_token(
    user_id: str,
    role: str,
    merchant_id: str | None,
    store_ids: list[str] | tuple[str, ...],
    region_code: str | None,
) -> str:
    cfg = config.get()
    now = clock.now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user_id,
        "typ": "access",
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=cfg.access_token_ttl)).timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    if merchant_id:
        claims["mid"] = merchant_id
    if store_ids:
        claims["sids"] = list(store_ids)
    if region_code:
        claims["rgn"] = region_code
    return jwt.encode(claims, cfg.secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str) -> AccessClaims | None:
    """The claims of a valid token, or None for anything expired, forged or malformed."""
    try:
        claims = jwt.decode(
            token,
            config.get().secret_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
            leeway=5,
        )
    except jwt.PyJWTError:
        return None
    # pyjwt checks exp against the wall clock; the domain clock may have been moved in tests.
    if claims.get("typ") != "access" or claims["exp"] < clock.now().timestamp():
        return None
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        return None
    sids = claims.get("sids") or []
    if not isinstance(sids, list):
        return None
    return AccessClaims(
        user_id=str(claims["sub"]),
        role=role,
        merchant_id=claims.get("mid"),
        store_ids=tuple(str(s) for s in sids),
        region_code=claims.get("rgn"),
    )
