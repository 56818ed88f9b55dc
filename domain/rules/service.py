"""The rulebook (规则): statutory limits as data, one entry per jurisdiction.

Adding a jurisdiction is adding an entry to rulebooks.json; nothing here names a place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from domain.errors import DomainError

RULEBOOKS = Path(__file__).with_name("rulebooks.json")


@dataclass(frozen=True)
class Rulebook:
    code: str
    name: str
    region_prefixes: tuple[str, ...]
    named_card_balance_cap: int
    bearer_card_balance_cap: int
    real_name_single_purchase: int
    bearer_card_min_validity_days: int
    escrow_ratio_percent: tuple[tuple[str, int], ...] = ()  # issuer class -> percent
    # 付款码 per card per China Standard Time day (条码支付业务规范 art. 13, see the JSON's note)
    payment_code_daily_limit: int = 100000

    def balance_cap(self, card_kind: str) -> int:
        return self.named_card_balance_cap if card_kind == "NAMED" else self.bearer_card_balance_cap

    def escrow_ratio(self, issuer_class: str | None) -> int:
        """Percent of the prepaid balance an issuer of this class keeps in escrow (存管比例)."""
        ratios = dict(self.escrow_ratio_percent)
        return ratios.get(issuer_class or "", ratios.get("_default", 0))


@lru_cache(maxsize=1)
def _load() -> dict[str, Rulebook]:
    raw = json.loads(RULEBOOKS.read_text(encoding="utf-8"))
    books = {}
    for code, data in raw.items():
        if code.startswith("_"):
            continue
        books[code] = Rulebook(
            code=code,
            name=data["name"],
            region_prefixes=tuple(data["region_prefixes"]),
            named_card_balance_cap=int(data["named_card_balance_cap"]),
            bearer_card_balance_cap=int(data["bearer_card_balance_cap"]),
            real_name_single_purchase=int(data["real_name_single_purchase"]),
            bearer_card_min_validity_days=int(data["bearer_card_min_validity_days"]),
            payment_code_daily_limit=int(data.get("payment_code_daily_limit", 100000)),
            escrow_ratio_percent=tuple(
                (str(k), int(v)) for k, v in data.get("escrow_ratio_percent", {}).items()
            ),
        )
    return books


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
