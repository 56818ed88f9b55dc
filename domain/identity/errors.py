"""Error codes of authentication."""

from __future__ import annotations

from domain.errors import DomainError


def invalid_credentials() -> DomainError:
    return DomainError("INVALID_CREDENTIALS", "用户名或密码错误", "Wrong username or password")


def invalid_phone() -> DomainError:
    return DomainError(
        "INVALID_INPUT", "手机号格式不正确", "Not a valid mainland mobile number", "phone"
    )


def rate_limited(field: str | None = None) -> DomainError:
    return DomainError(
        "RATE_LIMITED", "操作过于频繁，请稍后再试", "Too many attempts, try later", field
    )


def code_invalid() -> DomainError:
    return DomainError("CODE_INVALID", "验证码错误", "Wrong or unknown code", "code")


def code_expired() -> DomainError:
    return DomainError("CODE_EXPIRED", "验证码已过期", "The code has expired", "code")


def code_locked() -> DomainError:
    return DomainError(
        "CODE_ATTEMPTS_EXCEEDED",
        "验证码错误次数过多，请重新获取",
        "Too many wrong codes; request a new one",
        "code",
    )


def refresh_invalid() -> DomainError:
    return DomainError(
        "REFRESH_TOKEN_INVALID", "登录已失效，请重新登录", "Refresh token invalid or expired"
    )


def refresh_reused() -> DomainError:
    return DomainError(
        "REFRESH_TOKEN_REUSED",
        "检测到登录凭证被重复使用，已退出所有设备",
        "Refresh token reused; every session of this login was revoked",
    )


def username_taken() -> DomainError:
    return DomainError("USERNAME_TAKEN", "用户名已被使用", "Username already taken", "username")


def weak_password() -> DomainError:
    return DomainError(
        "INVALID_INPUT", "密码至少 10 位", "Password must have at least 10 characters", "password"
    )
