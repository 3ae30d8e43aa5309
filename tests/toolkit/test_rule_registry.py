"""The rule registry: one list of rules, equal to the rule pages' front matter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from guide_runtime.configurations import ROOT
from implicit_io.rules import RULES, Rule, rule

PAGES = sorted((ROOT / "guides" / "rules").glob("io*.md"))


def front_matter(page: Path) -> dict:
    _, header, _ = page.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(header)["rule"]


def test_every_rule_page_is_in_the_registry_and_nothing_else() -> None:
    assert [front_matter(page)["code"] for page in PAGES] == list(RULES)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_the_registry_holds_the_page_values(page: Path) -> None:
    meta = front_matter(page)
    assert RULES[meta["code"]] == Rule(
        meta["code"],
        meta["name"],
        meta["level"],
        meta["phase"],
        meta["summary"],
        meta.get("replaced_by"),
    )


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
