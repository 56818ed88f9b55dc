"""The rulebook (规则): statutory limits as data, one entry per jurisdiction.

Adding a jurisdiction is adding an entry to rulebooks.json; nothing here names a place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from domain.errors import DomainError

RULEBOOKS = Path(__file__).with_name("rulebooks.json")


@dataclass(frozen=True)
class IndustryLimits:
    """Limits some jurisdictions put on prepayments of one industry (e.g. education, fitness)."""

    max_sessions_per_purchase: int | None = None
    max_validity_days: int | None = None
    max_single_purchase: int | None = None


@dataclass(frozen=True)
class Rulebook:
    code: str
    name: str
    region_prefixes: tuple[str, ...]
    named_card_balance_cap: int
    bearer_card_balance_cap: int
    real_name_single_purchase: int
    bearer_card_min_validity_days: int
    bank_transfer_only_personal: int  # a single purchase this large only by bank transfer
    bank_transfer_only_corporate: int
    cash_refund_limit: int  # 退卡 paid in cash at most this much
    cooling_off_days: int  # 冷静期: 0 when the jurisdiction has none
    cooling_off_refund_days: int  # a cooling-off refund is paid within this many days
    record_retention_years: int
    filing_threshold: int  # 备案 once the prepaid balance reaches this (0: always)
    stop_notice_days: int  # notice before stopping business
    payment_code_daily_limit: int  # 付款码 per card per China Standard Time day
    escrow_ratio_percent: tuple[tuple[str, int], ...]  # issuer class -> percent
    escrow_warning_percent: tuple[tuple[str, int], ...]  # level -> held as % of required
    industry_limits: tuple[tuple[str, IndustryLimits], ...]

    def balance_cap(self, card_kind: str) -> int:
        return self.named_card_balance_cap if card_kind == "NAMED" else self.bearer_card_balance_cap

    def escrow_ratio(self, issuer_class: str | None) -> int:
        """Percent of the prepaid balance an issuer of this class keeps in escrow (存管比例)."""
        ratios = dict(self.escrow_ratio_percent)
        return ratios.get(issuer_class or "", ratios.get("_default", 0))

    def limits_for(self, industry: str) -> IndustryLimits:
        return dict(self.industry_limits).get(industry, IndustryLimits())

    def escrow_warning(self, held: int, required: int) -> str | None:
        """The most severe warning line escrow has fallen below, if any."""
        if required <= 0:
            return None
        found = None
        for level, percent in sorted(self.escrow_warning_percent, key=lambda lv: -lv[1]):
            if held * 100 < required * percent:
                found = level
        return found


INT_RULES = (
    "named_card_balance_cap",
    "bearer_card_balance_cap",
    "real_name_single_purchase",
    "bearer_card_min_validity_days",
    "bank_transfer_only_personal",
    "bank_transfer_only_corporate",
    "cash_refund_limit",
    "cooling_off_days",
    "cooling_off_refund_days",
    "record_retention_years",
    "filing_threshold",
    "stop_notice_days",
    "payment_code_daily_limit",
)


def _book(code: str, data: dict[str, Any]) -> Rulebook:
    return Rulebook(
        code=code,
        name=str(data["name"]),
        region_prefixes=tuple(data["region_prefixes"]),
        **{rule: int(data[rule]) for rule in INT_RULES},
        escrow_ratio_percent=tuple(
            (str(k), int(v)) for k, v in data["escrow_ratio_percent"].items()
        ),
        escrow_warning_percent=tuple(
            (str(k), int(v)) for k, v in data["escrow_warning_percent"].items()
        ),
        industry_limits=tuple(
            (str(industry), IndustryLimits(**{k: int(v) for k, v in limits.items()}))
            for industry, limits in data["industry_limits"].items()
        ),
    )


@lru_cache(maxsize=1)
def _load() -> dict[str, Rulebook]:
    raw = json.loads(RULEBOOKS.read_text(encoding="utf-8"))
    national = raw["NATIONAL"]
    books = {}
    for code, data in raw.items():
        if code.startswith("_"):
            continue
        # Every jurisdiction inherits the national rules it does not restate.
        books[code] = _book(code, {**national, **data})
    return books


def all_books() -> list[Rulebook]:
    return list(_load().values())


def for_region(region_code: str) -> Rulebook:
    """The rulebook whose region prefix matches longest; the national one otherwise."""
    best = _load()["NATIONAL"]
    best_len = 0
    for book in _load().values():
        for prefix in book.region_prefixes:
            if region_code.startswith(prefix) and len(prefix) > best_len:
                best, best_len = book, len(prefix)
    return best


def balance_cap_exceeded(cap: int) -> DomainError:
    return DomainError(
        "BALANCE_CAP_EXCEEDED",
        f"超过单张卡余额上限 {cap // 100} 元",
        f"The card balance may not exceed {cap // 100} yuan",
        "amount",
    )


def real_name_required(threshold: int) -> DomainError:
    return DomainError(
        "REAL_NAME_REQUIRED",
        f"单次购卡或充值 {threshold // 100} 元及以上须实名登记",
        f"A single purchase of {threshold // 100} yuan or more needs real-name registration",
        "amount",
    )


def prepayment_limit_exceeded(
    book: Rulebook, industry: str, what_zh: str, what_en: str
) -> DomainError:
    return DomainError(
        "PREPAYMENT_LIMIT_EXCEEDED",
        f"{book.name}{industry}类预付卡规定：{what_zh}",
        f"{book.code} rules for {industry.lower()} prepayments: {what_en}",
        "amount",
    )


def bank_transfer_required(threshold: int) -> DomainError:
    return DomainError(
        "BANK_TRANSFER_REQUIRED",
        f"单次购卡或充值 {threshold // 100} 元及以上须通过银行转账",
        f"A single purchase of {threshold // 100} yuan or more must be paid by bank transfer",
        "amount",
    )


def check_purchase(
    book: Rulebook, industry: str, amount: int, sessions: int | None, channel: str | None = None
) -> None:
    """The rulebook's limits on one purchase of prepaid value (sale or top-up)."""
    if amount >= book.bank_transfer_only_personal and channel != "BANK_TRANSFER":
        raise bank_transfer_required(book.bank_transfer_only_personal)
    limits = book.limits_for(industry)
    if limits.max_single_purchase is not None and amount > limits.max_single_purchase:
        raise prepayment_limit_exceeded(
            book,
            industry,
            f"单次预付不得超过 {limits.max_single_purchase // 100} 元",
            f"one prepayment may not exceed {limits.max_single_purchase // 100} yuan",
        )
    cap = limits.max_sessions_per_purchase
    if sessions is not None and cap is not None and sessions > cap:
        raise prepayment_limit_exceeded(
            book,
            industry,
            f"单次预付不得超过 {cap} 课时",
            f"one prepayment may not exceed {cap} sessions",
        )


def check_product(
    book: Rulebook, industry: str, validity_days: int | None, pack: int | None
) -> None:
    """Limits on what a product may promise (validity, sessions per pack) in this industry."""
    limits = book.limits_for(industry)
    longest = limits.max_validity_days
    if longest is not None and (validity_days is None or validity_days > longest):
        error = prepayment_limit_exceeded(
            book,
            industry,
            f"有效期不得超过 {longest} 天",
            f"a prepayment may cover at most {longest} days",
        )
        error.field = "validityDays"
        raise error
    if pack is not None:
        check_purchase(book, industry, 0, pack)
