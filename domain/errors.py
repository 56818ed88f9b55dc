"""Domain errors: a stable code for clients, a message in Chinese and English."""

from __future__ import annotations


class DomainError(Exception):
    """An expected business failure. Becomes a `UserError` in the mutation payload."""

    def __init__(self, code: str, zh: str, en: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {en}")
        self.code = code
        self.zh = zh
        self.en = en
        self.field = field

    def message(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


def invalid_input(field: str, zh: str, en: str) -> DomainError:
    return DomainError("INVALID_INPUT", zh, en, field)


class AccessDenied(Exception):
    """Raised when the viewer may not do or see something; a top-level error, not a UserError."""

    def __init__(self, code: str = "FORBIDDEN", message: str = "Forbidden") -> None:
        super().__init__(message)
        self.code = code


def forbidden(message: str = "You are not allowed to do this") -> AccessDenied:
    return AccessDenied("FORBIDDEN", message)


def unauthenticated(message: str = "Authentication required") -> AccessDenied:
    return AccessDenied("UNAUTHENTICATED", message)
