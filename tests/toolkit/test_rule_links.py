import re
from pathlib import Path

import pytest

from guide_runtime.configurations import ROOT
from implicit_io import guard, mapping_check, review_check, statement_budgets
from implicit_io.rule_links import (
    DEFAULT_DOCS_URL,
    DOCS_URL_VARIABLE,
    KNOWN_RULES,
    docs_base_url,
    page_url,
    rule_url,
)

RULE_CODE = re.compile(r"""["'](IO\d{3})["']""")


def codes_emitted_by(module) -> set[str]:
    """Every rule code literal in a tool's source: what it can print."""
    return set(RULE_CODE.findall(Path(module.__file__).read_text()))


TOOLS = [guard, mapping_check, review_check, statement_budgets]


def test_rule_url_joins_the_base_and_the_page() -> None:
    assert rule_url("IO101", "https://docs.test/guide/") == (
        "https://docs.test/guide/guides/rules/io101.html"
    )
    assert rule_url("IO101", "https://docs.test/guide") == rule_url(
        "IO101", "https://docs.test/guide/"
    )
    assert rule_url("IO402", "") == "guides/rules/io402.html"
    assert rule_url("IO402", "/") == "/guides/rules/io402.html"
    assert rule_url("IO402").startswith(docs_base_url())
    assert page_url("guides/review-check.html", "/site") == (
        "/site/guides/review-check.html"
    )


def test_the_base_url_comes_from_the_environment(monkeypatch) -> None:
    assert DOCS_URL_VARIABLE == "IMPLICIT_IO_DOCS_URL"  # as the README documents
    monkeypatch.delenv(DOCS_URL_VARIABLE, raising=False)
    assert docs_base_url() == DEFAULT_DOCS_URL
    monkeypatch.setenv(DOCS_URL_VARIABLE, "https://guide.test/")
    assert rule_url("IO101") == "https://guide.test/guides/rules/io101.html"


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule code 'IO999'"):
        rule_url("IO999")


def test_every_known_rule_has_its_page() -> None:
    for code, name in KNOWN_RULES.items():
        page = ROOT / "guides" / "rules" / f"{code.lower()}.md"
        assert page.is_file(), page
        assert f"# {code} · {name}" in page.read_text(), (code, name)


@pytest.mark.parametrize("tool", TOOLS, ids=lambda module: module.__name__)
def test_tools_emit_only_known_codes(tool) -> None:
    emitted = codes_emitted_by(tool)
    assert emitted, tool
    assert emitted <= KNOWN_RULES.keys()


def test_every_link_the_tools_emit_resolves_in_the_built_site(built_site: Path):
    emitted = set().union(*map(codes_emitted_by, TOOLS))
    assert emitted <= KNOWN_RULES.keys()
    for code in sorted(KNOWN_RULES):
        page = built_site / rule_url(code, "")
        assert page.is_file(), f"{code}: {page} is not in the built site"
