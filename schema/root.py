"""The root types and the Schema, with the production limits and caches."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.auth import AuthMutation
from schema.cancellation import CancellationMutation, CancellationQuery
from schema.cards import CardMutation, CardQuery, CardSubscription
from schema.codes import CodeMutation, CodeQuery
from schema.counter import CounterMutation, CounterQuery
from schema.errors import apply_error_policy
from schema.escrow import EscrowMutation, EscrowQuery
from schema.merchants import MerchantMutation, MerchantQuery
from schema.payments import PaymentMutation, PaymentQuery
from schema.scalars import SCALAR_MAP
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
    ),
)
Subscription = merge_types("Subscription", (ViewerSubscription, CardSubscription))


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None):  # type: ignore[no-untyped-def]
        # Strawberry hands every result's error list here (queries, mutations and each
        # subscription event), so the error policy is applied in place.
        apply_error_policy(errors, execution_context.context if execution_context else None)


CACHE_SIZE = 512


def build_schema(max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30) -> Schema:
    # The limiter rule classes are built once: the validation cache keys on them, so fresh
    # classes per request would make every lookup miss.
    rules = (
        QueryDepthLimiter(max_depth=max_depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules
    )
    return Schema(
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: AddValidationRules(rules),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: ParserCache(maxsize=CACHE_SIZE),
            lambda: ValidationCache(maxsize=CACHE_SIZE),
        ],
    )


schema = build_schema()
