"""The {proof} role and the tested-configurations table (_ext/proofs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def _record(site: Path, configuration: Configuration, outcome: str) -> None:
    configurations.write_record(
        configuration, {TEST: outcome}, {"sqlalchemy": "x"}, root=site
    )


def _badges(site: Path) -> dict[str, tuple[str, str]]:
    """Badge text → (state class, explanation) on the built page."""
    page = (site / "_build" / "index.html").read_text()
    found = re.findall(
        r'<abbr class="proof-on proof-(\w+)" title="([^"]*)">([^<]*)</abbr>', page
    )
    return {text: (state, why) for state, why, text in found}


def test_a_claim_shows_where_its_test_passed_and_where_it_did_not(site: Path) -> None:
    _record(site, Configuration("sqlite", "2.1"), "passed")
    _record(site, Configuration("sqlite", "2.0"), "failed")
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    badges = _badges(site)
    assert badges["SQLite · 2.1 ✓"][0] == "passed"
    assert badges["SQLite · 2.0 ✗"] == (
        "unproven",
        "SQLite (aiosqlite), SQLAlchemy 2.0: not proven: the test failed",
    )
    assert "no run of this suite is recorded" in badges["PostgreSQL · 2.1 ✗"][1]
    # The test's code is one click away, at the test's line.
    page = (site / "_build" / "index.html").read_text()
    assert 'href="_proofs/test_demo.html#L-1"' in page
    code = (site / "_build" / "_proofs" / "test_demo.html").read_text()
    assert 'id="L-1"' in code and "test_rollback_expires" in code


def test_a_record_of_other_code_proves_nothing(site: Path) -> None:
    _record(site, Configuration("sqlite", "2.1"), "passed")
    (site / "tests" / "test_demo.py").write_text(TEST_MODULE + "# edited\n")
    assert build_small_site(site).returncode == 0
    state, why = _badges(site)["SQLite · 2.1 ✗"]
    assert state == "unproven" and "changed since the run" in why
    table = (site / "_build" / "index.html").read_text()
    assert "stale: the examples or tests changed since the run" in table


def test_a_new_record_rewrites_the_pages_that_cite_proofs(site: Path) -> None:
    assert build_small_site(site).returncode == 0
    assert "SQLite · 2.1 ✗" in _badges(site)
    _record(site, Configuration("sqlite", "2.1"), "passed")
    assert build_small_site(site).returncode == 0  # incremental: no source changed
    assert "SQLite · 2.1 ✓" in _badges(site)


def test_code_changed_elsewhere_makes_built_badges_stale(site: Path) -> None:
    # No page and no record changes: only the verdict does, and pages follow it.
    _record(site, Configuration("sqlite", "2.1"), "passed")
    assert build_small_site(site).returncode == 0
    assert "SQLite · 2.1 ✓" in _badges(site)
    (site / "tests" / "test_other.py").write_text("def test_z():\n    pass\n")
    assert build_small_site(site).returncode == 0  # incremental
    state, why = _badges(site)["SQLite · 2.1 ✗"]
    assert state == "unproven" and "changed since the run" in why


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
