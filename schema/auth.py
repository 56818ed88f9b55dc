"""Authentication: password login, phone one-time codes, refresh tokens."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.identity.service import Tokens
from resolvers import auth
from schema.errors import UserError, mutate
from schema.permissions import public


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.input
class RequestOtpInput:
    phone: str


@strawberry.input
class LoginWithOtpInput:
    phone: str
    code: str


@strawberry.input
class RefreshTokenInput:
    refresh_token: str


@strawberry.type
class AuthPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    role: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RequestOtpPayload:
    masked_phone: str | None = None
    expires_in_seconds: int | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _tokens(t: Tokens) -> dict[str, object]:
    return {"access_token": t.access_token, "refresh_token": t.refresh_token, "role": t.user.role}


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        extensions=public(), description="Username and password (staff, operator, officials)."
    )
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        return await mutate(
            info, AuthPayload, auth.login(info.context, input.username, input.password), _tokens
        )

    @strawberry.mutation(extensions=public(), description="Send a 6-digit login code to a phone.")
    async def request_otp(self, info: Info, input: RequestOtpInput) -> RequestOtpPayload:
        return await mutate(
            info,
            RequestOtpPayload,
            auth.request_otp(info.context, input.phone),
            lambda r: {"masked_phone": r[0], "expires_in_seconds": r[1]},
        )

    @strawberry.mutation(
        extensions=public(), description="Phone + code; creates the consumer on first login."
    )
    async def login_with_otp(self, info: Info, input: LoginWithOtpInput) -> AuthPayload:
        return await mutate(
            info, AuthPayload, auth.login_with_otp(info.context, input.phone, input.code), _tokens
        )

    @strawberry.mutation(
        extensions=public(), description="Rotate a refresh token; reuse revokes the whole login."
    )
    async def refresh_token(self, info: Info, input: RefreshTokenInput) -> AuthPayload:
        return await mutate(
            info, AuthPayload, auth.refresh_token(info.context, input.refresh_token), _tokens
        )
