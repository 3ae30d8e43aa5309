"""The rule registry: the one list of rules the toolkit and the site share."""

from __future__ import annotations

import re

import pytest

from implicit_io.rules import RULES, Rule, rule


@pytest.mark.parametrize("code", RULES)
def test_every_rule_is_well_formed(code: str) -> None:
    found = RULES[code]
    assert found.code == code and re.fullmatch(r"IO[1-9]\d\d", code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", found.name), "kebab-case names"
    assert found.level in ("advisory", "mandatory")
    assert found.phase in (1, 2, 3)
    assert found.summary.endswith(".") and found.summary.count("`") % 2 == 0
    assert found.replaced_by in (None, *RULES) and found.replaced_by != code


def test_codes_are_listed_in_order_and_names_are_unique() -> None:
    assert list(RULES) == sorted(RULES)
    names = [found.name for found in RULES.values()]
    assert len(set(names)) == len(names)


def test_a_rule_knows_its_url_and_whether_it_is_retired() -> None:
    io101 = rule("io101")
    assert io101.url("https://docs.test/") == (
        "https://docs.test/guides/rules/io101.html"
    )
    assert not io101.retired
    retired = Rule("IO999", "gone", "advisory", 1, "Gone.", replaced_by="IO101")
    assert retired.retired


def test_an_unknown_code_names_the_known_ones() -> None:
    known = r"unknown rule code 'IO999'; known codes: IO101, IO102"
    with pytest.raises(ValueError, match=known):
        rule("IO999")
