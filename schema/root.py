"""The root types and the Schema, with the production limits and caches."""

from __future__ import annotations

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.auth import AuthMutation
from schema.cancellation import CancellationMutation, CancellationQuery
from schema.cards import CardMutation, CardQuery, CardSubscription
from schema.codes import CodeMutation, CodeQuery
from schema.counter import CounterMutation, CounterQuery
from schema.errors import apply_error_policy
from schema.escrow import EscrowMutation, EscrowQuery
from schema.members import MemberMutation, MemberQuery, MemberSubscription
from schema.merchants import MerchantMutation, MerchantQuery
from schema.payments import PaymentMutation, PaymentQuery
from schema.scalars import SCALAR_MAP
from schema.terminals import TerminalMutation, TerminalQuery, TerminalSubscription
from schema.viewer import ViewerQuery, ViewerSubscription

Query = merge_types(
    "Query",
    (
        ViewerQuery,
        MerchantQuery,
        CardQuery,
        PaymentQuery,
        EscrowQuery,
        CodeQuery,
        CounterQuery,
        CancellationQuery,
        MemberQuery,
        TerminalQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        MerchantMutation,
        CardMutation,
        PaymentMutation,
        EscrowMutation,
        CodeMutation,
        CounterMutation,
        CancellationMutation,
        MemberMutation,
        TerminalMutation,
    ),
)
Subscription = merge_types(
    "Subscription", (ViewerSubscription, CardSubscription, TerminalSubscription, MemberSubscription)
)


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None):  # type: ignore[no-untyped-def]
        # Strawberry hands every result's error list here (queries, mutations and each
        # subscription event), so the error policy is applied in place.
        apply_error_policy(errors, execution_context.context if execution_context else None)


CACHE_SIZE = 512


class Limits(SchemaExtension):
    """The token limit, the depth and alias rules, and the parser and validation caches.

    What strawberry's MaxTokensLimiter, AddValidationRules, ParserCache and ValidationCache
    do, as one extension: each extension costs a context manager per stage per request. The
    caches are strawberry's own (shared per maxsize), keyed on the query text and token limit,
    and on the document and the rule classes.
    """

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> None:
        self.rules = rules
        self.max_tokens = max_tokens

    def on_parse(self):  # type: ignore[no-untyped-def]
        ctx = self.execution_context
        ctx.parse_options["max_tokens"] = self.max_tokens
        ctx.graphql_document = _parse(ctx.query, **ctx.parse_options)
        yield

    def on_validate(self):  # type: ignore[no-untyped-def]
        ctx = self.execution_context
        ctx.validation_rules = ctx.validation_rules + self.rules
        ctx.pre_execution_errors = _validate(
            ctx.schema._schema, ctx.graphql_document, ctx.validation_rules
        )
        yield


_parse = _get_parse_cache(CACHE_SIZE)
_validate = _get_validate_cache(CACHE_SIZE)


def build_schema(max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30) -> Schema:
    # The limiter rule classes are built once: the validation cache keys on them, so fresh
    # classes per request would make every lookup miss.
    rules = tuple(
        QueryDepthLimiter(max_depth=max_depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules
    )
    return Schema(
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[lambda: Limits(rules, max_tokens)],
    )


schema = build_schema()
