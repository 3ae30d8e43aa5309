"""The only_on marker and proof records (tests/configurations.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from guide_runtime import configurations
from guide_runtime.configurations import Configuration, Record
from tests.plugins import INNER_RUN_PLUGINS_OFF, conftest_text
from tests.plugins import configurations as only_on

INNER_CONFTEST = conftest_text()
INNER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"engine": "postgresql"}, "needs reason="),
        ({"engine": "mysql", "reason": "r"}, "names engine ['mysql'], which no suite"),
        ({"sqlalchemy": ("2.0", "1.4"), "reason": "r"}, "names sqlalchemy ['1.4']"),
        ({"reason": "r"}, "names no engine and no sqlalchemy line"),
        ({"engines": "sqlite", "reason": "r"}, "unknown keyword(s) ['engines']"),
    ],
)
def test_a_bad_only_on_marker_is_named(kwargs: dict, problem: str) -> None:
    assert problem in (only_on.only_on_problem(kwargs, ()) or "")


def test_only_on_admits_exactly_the_named_configurations() -> None:
    marker = {"engine": "postgresql", "sqlalchemy": ("2.0", "2.1"), "reason": "r"}
    admitted = [
        c for c in configurations.ALL_CONFIGURATIONS if only_on.runs_on(marker, c)
    ]
    assert admitted == [
        Configuration("postgresql", "2.1"),
        Configuration("postgresql", "2.0"),
    ]


def test_a_marker_for_a_configuration_no_suite_runs_stops_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makeini(INNER_INI)
    pytester.makepyfile(
        test_odd="""
        import pytest

        @pytest.mark.only_on(engine="oracle", reason="no suite runs it")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_inprocess(*INNER_RUN_PLUGINS_OFF)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "test_odd.py::test_x: its only_on marker names engine ['oracle'], which no "
        "suite runs" in result.stderr.str()
    )


def test_a_test_for_another_configuration_is_skipped_with_its_reason(
    pytester: pytest.Pytester,
) -> None:
    here = configurations.current()
    other = next(e for e in configurations.ENGINES if e != here.engine)
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makeini(INNER_INI)
    pytester.makepyfile(
        test_elsewhere=f"""
        import pytest

        @pytest.mark.only_on(engine="{other}", reason="a fact of that engine")
        def test_there():
            pass

        @pytest.mark.only_on(engine="{here.engine}", reason="a fact of this engine")
        def test_here():
            pass
        """
    )
    result = pytester.runpytest_inprocess(*INNER_RUN_PLUGINS_OFF, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"*only on {configurations.ENGINES[other]}: a fact of that engine*"]
    )


def test_an_outcome_covers_every_parametrized_case() -> None:
    record = Record(
        Configuration("sqlite", "2.1"),
        {},
        {"t.py::a[1]": "passed", "t.py::a[2]": "failed", "t.py::b": "passed"},
        stale=None,
    )
    assert record.outcome("t.py::a") == "failed"
    assert record.outcome("t.py::b") == "passed"
    assert record.outcome("t.py::ab") == "not run"
    assert record.outcome("t.py::a[1]") == "passed"  # one case, by its own id


def test_cases_map_each_parametrized_id_to_its_outcome() -> None:
    record = Record(
        Configuration("postgresql", "2.0"),
        {},
        {
            "t.py::a[lazy=select]": "passed",
            "t.py::a[lazy=noload]": "xfailed",
            "t.py::a[lazy=dynamic-pool=null]": "skipped",
            "t.py::ab[lazy=joined]": "failed",
            "t.py::b": "passed",
        },
        stale=None,
    )
    assert record.cases("t.py::a") == {
        "lazy=select": "passed",
        "lazy=noload": "xfailed",
        "lazy=dynamic-pool=null": "skipped",
    }
    assert record.cases("t.py::b") == {}  # not parametrized
    assert record.cases("t.py::c") == {}  # not recorded


@pytest.mark.parametrize(
    ("case", "dimensions"),
    [
        ("pool=null", {"pool": "null"}),
        ("lazy=raise_on_sql-pool=busy", {"lazy": "raise_on_sql", "pool": "busy"}),
        # A value may hold a dash; only "-name=" starts the next dimension.
        ("mode=track-only", {"mode": "track-only"}),
        ("null-pool", {}),
        ("reproduce0-FROM post", {}),
        ("pool=", {}),
    ],
)
def test_a_case_id_splits_into_its_dimensions(case: str, dimensions: dict) -> None:
    assert configurations.case_dimensions(case) == dimensions


def test_a_summary_says_where_the_claim_is_proven_and_where_it_is_not() -> None:
    summary = configurations.summarize_cases(
        {
            "lazy=select": "passed",
            "lazy=joined": "passed",
            "lazy=noload": "xfailed",
            "lazy=dynamic": "xfailed",
            "pool=null": "failed",
            "odd": "skipped",
        }
    )
    assert summary.proven == ("lazy=select", "lazy=joined")
    assert summary.not_holding == ("lazy=noload", "lazy=dynamic")
    assert summary.text == (
        "proven for: lazy=select, joined · not: lazy=noload, dynamic"
        " · failed: pool=null · skipped: odd"
    )
    assert configurations.summarize_cases({}).text == ""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what a record depends on, to change without touching the repo."""
    for folder in configurations.CODE_FOLDERS:
        if (configurations.ROOT / folder).is_dir():
            shutil.copytree(
                configurations.ROOT / folder,
                tmp_path / folder,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    (tmp_path / "requirements.txt").write_text("sqlalchemy==2.1.9\n")
    record = {
        "configuration": {"engine": "sqlite", "sqlalchemy": "2.1"},
        "lock_file": "requirements.txt",
        "lock_sha256": configurations.lock_fingerprint("requirements.txt", tmp_path),
        "code_sha256": configurations.code_fingerprint(tmp_path),
        "versions": {"sqlalchemy": "2.1.9"},
        "outcomes": {"tests/test_x.py::test_y": "passed"},
    }
    (tmp_path / "proofs").mkdir()
    (tmp_path / "proofs" / "sqlite-sqlalchemy-2.1.json").write_text(json.dumps(record))
    return tmp_path


def _stale(root: Path) -> str | None:
    return configurations.load_records(root)[Configuration("sqlite", "2.1")].stale


def test_a_record_of_this_checkout_is_current(checkout: Path) -> None:
    assert _stale(checkout) is None


def test_a_changed_lock_makes_the_record_stale(checkout: Path) -> None:
    (checkout / "requirements.txt").write_text("sqlalchemy==2.1.10\n")
    assert _stale(checkout) == "requirements.txt changed since the run"


def test_a_changed_test_makes_the_record_stale(checkout: Path) -> None:
    with (checkout / "tests" / "infrastructure" / "test_configurations.py").open(
        "a"
    ) as file:
        file.write("\n# edited\n")
    assert _stale(checkout) == "the examples or tests changed since the run"


def _make_with_lock(lock: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "test-sqlalchemy-2.0",
            f"LOCK_2_0={lock}",
            f"VENV_2_0={venv}",
        ],
        cwd=configurations.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_lock_that_no_longer_installs_names_itself_and_the_fix(
    tmp_path: Path,
) -> None:
    """``make test-sqlalchemy-2.0`` on a lock pip cannot install stops, saying why."""
    lock = tmp_path / "requirements-broken.txt"
    # A pin that cannot be satisfied, without asking any package index.
    lock.write_text(
        f"sqlalchemy @ file://{tmp_path}/gone/SQLAlchemy-0-py3-none-any.whl\n"
    )
    # Kept between runs, as make keeps .venv: made on a fresh checkout, then kept.
    venv = configurations.ROOT / "_build" / "venvs" / "broken-lock"
    runs = [] if (venv / "bin" / "pip").exists() else [_make_with_lock(lock, venv)]
    runs.append(_make_with_lock(lock, venv))
    for run in runs:
        assert run.returncode != 0
        assert f"the pins of {lock} no longer install" in run.stderr
        assert "make lock" in run.stderr
    # The last make found a working virtualenv of the same Python, and kept it.
    assert f"keeping the virtualenv {venv}" in runs[-1].stdout, runs[-1].stdout
    assert not (venv / "bin" / "pytest").exists()


def test_a_record_written_again_unchanged_keeps_its_modification_time(
    tmp_path: Path,
) -> None:
    # Sphinx reads again each page whose records' modification time changed.
    record = tmp_path / "proofs" / "record.json"
    configurations.write_if_changed(record, "{}\n")
    os.utime(record, ns=(1_000_000_000, 1_000_000_000))
    configurations.write_if_changed(record, "{}\n")
    assert record.stat().st_mtime_ns == 1_000_000_000
    configurations.write_if_changed(record, '{"a": 1}\n')
    assert record.read_text() == '{"a": 1}\n'
    assert record.stat().st_mtime_ns > 1_000_000_000


def test_the_default_configuration_comes_first() -> None:
    # Pages list a shown output's configurations in this order, the default first
    # (its record is the one the build requires).
    assert configurations.ALL_CONFIGURATIONS[0] == configurations.DEFAULT
