"""Login, one-time codes and token refresh."""

from __future__ import annotations

from domain.identity import service as identity
from resolvers.context import Context


async def login(ctx: Context, username: str, password: str) -> identity.Tokens:
    return await identity.login(username, password, ctx.origin)


async def request_otp(ctx: Context, phone: str) -> tuple[str, int]:
    return await identity.request_otp(phone, ctx.origin)


async def login_with_otp(ctx: Context, phone: str, code: str) -> identity.Tokens:
    return await identity.login_with_otp(phone, code, ctx.origin)


async def refresh_token(ctx: Context, refresh: str) -> identity.Tokens:
    return await identity.refresh(refresh, ctx.origin)
