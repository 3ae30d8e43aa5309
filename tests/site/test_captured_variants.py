"""The captured-variants directive (_ext/captured_variants.py) and record_capture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guide_runtime import configurations
from guide_runtime.configurations import Configuration
from tests.plugins import INNER_RUN_PLUGINS_OFF, conftest_text
from tests.plugins.proofs import CAPTURE_PROPERTY, _CaptureRecorder
from tests.site.small_sites import build_small_site, small_conf

CONF = small_conf("myst_parser", "sphinx_design", "proofs", "captured_variants")
TEST_MODULE = "def test_shape():\n    assert True\n"
SQLITE_21 = Configuration("sqlite", "2.1")
SQLITE_20 = Configuration("sqlite", "2.0")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A one-page site showing the variants of one capture."""
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo.py").write_text(TEST_MODULE)
    (tmp_path / configurations.lock_file()).write_text("sqlalchemy==2.1.9\n")
    (tmp_path / "index.md").write_text(
        "# Home\n\n```{captured-variants} demo-shape\n```\n"
    )
    for configuration, version in ((SQLITE_21, "2.1.9"), (SQLITE_20, "2.0.58")):
        configurations.write_record(
            configuration,
            {"tests/test_demo.py::test_shape": "passed"},
            {"sqlalchemy": version},
            root=tmp_path,
        )
    return tmp_path


def _capture(site: Path, configuration: Configuration, text: str) -> None:
    path = configurations.captures_path(configuration, site)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"test": "tests/test_demo.py::test_shape[case]", "text": text}
    path.write_text(json.dumps({"demo-shape": entry}))


def test_each_configuration_shows_its_recording_or_says_none(site: Path) -> None:
    _capture(site, SQLITE_21, "Raised: StatementError")
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    page = (site / "_build" / "index.html").read_text()
    assert page.count('class="sd-tab-label"') == 2
    assert "SQLite (aiosqlite), SQLAlchemy 2.1" in page
    assert "Raised: StatementError" in page
    assert "Recorded on SQLAlchemy 2.1.9 by" in page
    assert "_proofs/test_demo.html#L-1" in page  # the recording test, cited
    # The 2.0 suite ran but recorded nothing: said so, nothing filled in.
    assert "SQLite (aiosqlite), SQLAlchemy 2.0" in page
    assert "Not recorded: its test ran here and passed without recording" in page


def test_a_configuration_the_test_skips_says_why(site: Path) -> None:
    _capture(site, SQLITE_21, "Raised: StatementError")
    why = "only on SQLAlchemy 2.1: 2.0 raises it bare"
    configurations.write_record(
        SQLITE_20,
        {"tests/test_demo.py::test_shape[case]": "skipped"},
        {"sqlalchemy": "2.0.58"},
        root=site,
        skips={"tests/test_demo.py::test_shape[case]": why},
    )
    assert build_small_site(site).returncode == 0
    page = (site / "_build" / "index.html").read_text()
    assert (
        "Not recorded here: its test does not run on this configuration (only on "
        "SQLAlchemy 2.1: 2.0 raises it bare)."
    ) in page


def test_a_capture_no_suite_recorded_fails_the_build(site: Path) -> None:
    build = build_small_site(site)
    assert build.returncode != 0
    assert (
        "index.md:3: ERROR: captured-variants 'demo-shape': no suite recorded this "
        "capture. A test must call record_capture('demo-shape', text)"
    ) in build.stderr


def test_record_capture_refuses_a_name_another_test_recorded(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(conftest_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_twice="""
        def test_one(record_capture):
            record_capture("same-name", "one")

        def test_two(record_capture):
            record_capture("same-name", "two")
        """
    )
    result = pytester.runpytest_inprocess(*INNER_RUN_PLUGINS_OFF)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*capture 'same-name' is already recorded by test_twice.py::test_one*"]
    )


def test_two_workers_recording_one_capture_are_both_named() -> None:
    """Under xdist each worker checks only its own captures; the controller, which
    records, sees every report and names a clash between workers."""
    recorder = _CaptureRecorder()
    for test in ("tests/test_a.py::test_one", "tests/test_b.py::test_two"):
        report = pytest.TestReport(
            test,
            ("tests/x.py", 0, test),
            {},
            "passed",
            None,
            "call",
            user_properties=[(CAPTURE_PROPERTY, ("same-name", test))],
        )
        recorder.pytest_runtest_logreport(report)
    assert recorder.clashes == [
        "'same-name' by tests/test_a.py::test_one and tests/test_b.py::test_two"
    ]
