"""The rulebook as data: inheritance from the national rules, and the checks it drives."""

from __future__ import annotations

import json

import pytest

from domain.errors import DomainError
from domain.rules import service as rules


def test_every_jurisdiction_inherits_the_national_rules_it_does_not_restate():
    national = rules.for_region("440305")
    assert national.code == "NATIONAL"
    for book in rules.all_books():
        assert book.named_card_balance_cap == national.named_card_balance_cap
        assert book.record_retention_years >= 5
    beijing = rules.for_region("110105")
    assert (beijing.cooling_off_days, beijing.cooling_off_refund_days) == (7, 5)
    assert beijing.escrow_ratio("GROUP") == 40 and national.escrow_ratio("GROUP") == 30
    assert rules.for_region("320583").cooling_off_days == 15
    assert rules.for_region("310115").code == "SHANGHAI"


def test_a_new_jurisdiction_is_only_data():
    raw = json.loads(rules.RULEBOOKS.read_text(encoding="utf-8"))
    data = {**raw["NATIONAL"], "name": "测试省", "region_prefixes": ["99"], "cooling_off_days": 3}
    book = rules._book("TEST", data)
    assert book.cooling_off_days == 3 and book.cash_refund_limit == 10000


def test_purchases_above_the_bank_transfer_line_are_refused():
    book = rules.for_region("440305")
    rules.check_purchase(book, "RETAIL", book.bank_transfer_only_personal - 1, None)
    with pytest.raises(DomainError) as refused:
        rules.check_purchase(book, "RETAIL", book.bank_transfer_only_personal, None)
    assert refused.value.code == "BANK_TRANSFER_REQUIRED"


def test_jiangsu_limits_education_and_fitness_prepayments():
    jiangsu = rules.for_region("320102")
    rules.check_purchase(jiangsu, "EDUCATION", 600000, 60)
    with pytest.raises(DomainError) as hours:
        rules.check_purchase(jiangsu, "EDUCATION", 600000, 61)
    assert hours.value.code == "PREPAYMENT_LIMIT_EXCEEDED" and "江苏省" in hours.value.zh
    with pytest.raises(DomainError) as fitness:
        rules.check_purchase(jiangsu, "FITNESS", 500001, None)
    assert fitness.value.code == "PREPAYMENT_LIMIT_EXCEEDED"
    rules.check_purchase(rules.for_region("110105"), "FITNESS", 500001, None)  # not in Beijing
    with pytest.raises(DomainError) as forever:
        rules.check_product(jiangsu, "EDUCATION", None, None)
    assert forever.value.field == "validityDays"
    rules.check_product(jiangsu, "EDUCATION", 92, 60)


def test_shanghai_draws_escrow_warning_lines():
    shanghai = rules.for_region("310101")
    assert shanghai.escrow_warning(100, 100) is None
    assert shanghai.escrow_warning(99, 100) == "WARNING"
    assert shanghai.escrow_warning(59, 100) == "SEVERE"
    assert rules.for_region("110105").escrow_warning(0, 100) is None
