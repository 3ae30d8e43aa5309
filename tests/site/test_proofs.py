"""The {proof} role and the tested-configurations table (_ext/proofs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from guide_runtime import configurations
from guide_runtime.configurations import Configuration
from tests.site.small_sites import build_small_site, small_conf

CONF = small_conf("myst_parser", "proofs")
TEST_MODULE = "def test_rollback_expires():\n    assert True\n"
TEST = "tests/test_demo.py::test_rollback_expires"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A one-page site citing one test, with the records each test writes."""
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo.py").write_text(TEST_MODULE)
    (tmp_path / "requirements.txt").write_text("sqlalchemy==2.1.9\n")
    # The lock of the suite running this test (the 2.0 suite has its own).
    (tmp_path / configurations.lock_file()).write_text("sqlalchemy==2.1.9\n")
    (tmp_path / "index.md").write_text(
        "# Home\n\nRollback expires {proof}`test_demo::test_rollback_expires`.\n\n"
        "```{tested-configurations}\n```\n"
    )
    return tmp_path


def _record(
    site: Path,
    configuration: Configuration,
    outcome: str,
    cases: dict[str, str] | None = None,
    skips: dict[str, str] | None = None,
) -> None:
    outcomes = {f"{TEST}[{case}]": o for case, o in cases.items()} if cases else {}
    configurations.write_record(
        configuration,
        outcomes or {TEST: outcome},
        {"sqlalchemy": "x"},
        root=site,
        skips={f"{TEST}[{case}]": why for case, why in (skips or {}).items()},
    )


def _mark(site: Path) -> tuple[str, dict[str, str]]:
    """The claim's mark and its detail: configuration → verdict in words."""
    page = BeautifulSoup((site / "_build" / "index.html").read_text(), "html.parser")
    [proof] = page.select("span.proof")
    button = proof.select_one("button.proof-mark")
    detail = page.select_one(f"#{button['aria-controls']}")
    assert detail.has_attr("hidden") and detail.parent is proof
    assert proof.find_parent(class_="no-search") is not None  # not search text
    lines = [line.get_text() for line in detail.select("span")]
    return button.get_text(), dict(line.split(": ", 1) for line in lines)


def test_a_claim_shows_where_its_test_passed_and_where_it_did_not(site: Path) -> None:
    _record(site, Configuration("sqlite", "2.1"), "passed")
    _record(site, Configuration("sqlite", "2.0"), "failed")
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    mark, verdicts = _mark(site)
    assert mark == "proven on 1/4"
    assert verdicts["SQLite · 2.1"] == "passed"
    assert verdicts["SQLite · 2.0"] == "failed"
    assert verdicts["PostgreSQL · 2.1"] == (
        "not recorded: no run of this suite is recorded"
    )
    # The test's code is one click away, at the test's line.
    page = (site / "_build" / "index.html").read_text()
    assert 'href="_proofs/test_demo.html#L-1"' in page
    code = (site / "_build" / "_proofs" / "test_demo.html").read_text()
    assert 'id="L-1"' in code and "test_rollback_expires" in code


def test_the_detail_names_the_cases_and_why_a_test_was_skipped(site: Path) -> None:
    cases = {"lazy=select": "passed", "lazy=joined": "passed", "lazy=noload": "xfailed"}
    _record(site, Configuration("sqlite", "2.1"), "passed", cases)
    skipped = {"lazy=select": "skipped"}
    why = {"lazy=select": "only on SQLite (aiosqlite): the message differs"}
    _record(site, Configuration("postgresql", "2.1"), "", skipped, why)
    assert build_small_site(site).returncode == 0
    _, verdicts = _mark(site)
    assert verdicts["SQLite · 2.1"] == (
        "passed (proven for: lazy=joined, select · not: lazy=noload)"
    )
    assert verdicts["PostgreSQL · 2.1"] == (
        "skipped: only on SQLite (aiosqlite): the message differs"
    )


def test_a_record_of_other_code_proves_nothing(site: Path) -> None:
    _record(site, Configuration("sqlite", "2.1"), "passed")
    (site / "tests" / "test_demo.py").write_text(TEST_MODULE + "# edited\n")
    assert build_small_site(site).returncode == 0
    mark, verdicts = _mark(site)
    assert mark == "proven on 0/4"
    assert "changed since the run" in verdicts["SQLite · 2.1"]
    table = (site / "_build" / "index.html").read_text()
    assert "stale: the examples or tests changed since the run" in table


def test_a_new_record_rewrites_the_pages_that_cite_proofs(site: Path) -> None:
    assert build_small_site(site).returncode == 0
    assert _mark(site)[0] == "proven on 0/4"
    _record(site, Configuration("sqlite", "2.1"), "passed")
    assert build_small_site(site).returncode == 0  # incremental: no source changed
    assert _mark(site)[0] == "proven on 1/4"


def test_code_changed_elsewhere_makes_built_badges_stale(site: Path) -> None:
    # No page and no record changes: only the verdict does, and pages follow it.
    _record(site, Configuration("sqlite", "2.1"), "passed")
    assert build_small_site(site).returncode == 0
    assert _mark(site)[0] == "proven on 1/4"
    (site / "tests" / "test_other.py").write_text("def test_z():\n    pass\n")
    assert build_small_site(site).returncode == 0  # incremental
    mark, verdicts = _mark(site)
    assert mark == "proven on 0/4" and "changed since" in verdicts["SQLite · 2.1"]


@pytest.mark.parametrize(
    ("citation", "message"),
    [
        ("test_demo::test_missing", "tests/test_demo.py has no test 'test_missing'"),
        ("test_nowhere::test_x", "no test module test_nowhere.py under tests/"),
        ("tests/test_demo.py::test_x", "write `test_module::test_name`"),
    ],
)
def test_a_citation_of_no_test_fails_the_build(
    site: Path, citation: str, message: str
) -> None:
    (site / "index.md").write_text(f"# Home\n\nA claim {{proof}}`{citation}`.\n")
    build = build_small_site(site)
    assert build.returncode != 0
    assert f"index.md:3: ERROR: {{proof}} '{citation}': {message}" in build.stderr
