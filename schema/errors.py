"""Errors at the edge: DomainError -> UserError in payloads; access errors and everything
unexpected -> top-level errors (unexpected ones masked and logged with the request id)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.types import Info

from domain.errors import AccessDenied, DomainError

log = structlog.get_logger("yikatong.graphql")


@strawberry.type(description="An expected business failure; clients key on `code`.")
class UserError:
    field: str | None
    code: str
    message: str

    @classmethod
    def of(cls, error: DomainError, lang: str) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message(lang))


P = TypeVar("P")
R = TypeVar("R")


async def mutate(
    info: Info,
    payload: type[P],
    call: Awaitable[R],
    result: Callable[[R], dict[str, Any]],
) -> P:
    """Run a mutation's resolver; a DomainError becomes `errors`, success fills the payload."""
    try:
        value = await call
    except DomainError as exc:
        return payload(errors=[UserError.of(exc, info.context.lang)])  # type: ignore[call-arg]
    return payload(**result(value), errors=[])  # type: ignore[call-arg]


def _rewrite(error: GraphQLError, lang: str, request_id: str) -> GraphQLError:
    original = error.original_error
    if original is None:
        # Syntax and validation errors: the client's fault, safe to show as they are.
        ext = dict(error.extensions or {})
        ext.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        return GraphQLError(
            error.message, error.nodes, error.source, error.positions, error.path, extensions=ext
        )
    if isinstance(original, AccessDenied):
        return GraphQLError(
            str(original),
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": original.code},
        )
    if isinstance(original, DomainError):
        return GraphQLError(
            original.message(lang),
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": original.code, "field": original.field},
        )
    client_fault = isinstance(original, ValueError) and error.path is None
    if isinstance(original, GraphQLError) or client_fault:
        # Variable coercion failures (a Fen that is a float, a bad DateTime).
        return GraphQLError(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            None,
            extensions={"code": "BAD_USER_INPUT"},
        )
    log.error(
        "unexpected error",
        request_id=request_id,
        path=error.path,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        "Internal server error",
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
    )


def apply_error_policy(errors: list[GraphQLError], context: Any) -> None:
    """Rewrite a result's errors in place by the rules above."""
    lang = getattr(context, "lang", "zh")
    request_id = getattr(context, "request_id", "-")
    errors[:] = [_rewrite(e, lang, request_id) for e in errors]
