"""Page outputs: found in the pages as MyST reads them (guide_runtime/outputs.py),
rendered from the records by the build (_ext/recorded_output.py), refused when
missing or made from other code, and recorded by the suite (tests/plugins/outputs.py).
What the outputs say about SQLAlchemy is tested beside each page's examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from guide_runtime import outputs
from guide_runtime.configurations import ALL_CONFIGURATIONS, DEFAULT, current
from guide_runtime.outputs import Entry, Request, page_requests
from tests.plugins import INNER_RUN_PLUGINS_OFF, conftest_text
from tests.site.small_sites import build_small_site, small_conf

TABLE = """\
```{round-trips} demo:_seed
:parents: 1 2

demo:lazy Lazy `select`
demo:eager `selectinload`
```
"""
RUN = "```{captured-run} demo:count_users\n:show-result:\n```\n"
SNIPPET = "async def count_users(session):\n    return 1\n"


def test_requests_are_found_as_myst_reads_the_pages(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    broken = TABLE.replace(":parents: 1 2", ":parents: none")
    nested = ":::{note}\n" + RUN.replace("```", "````") + ":::\n"
    quoted = f"````markdown\n{RUN}````\n"
    page = (
        f"# Page\n\n{TABLE}\n{broken}\n{quoted}\n{nested}\n{RUN.replace('```', ':::')}"
    )
    (tmp_path / "index.md").write_text(page)
    found = page_requests(tmp_path)
    assert [(use.line, use.request.key) for use in found] == [
        (3, "round-trips demo:_seed parents=1 2 rows=demo:lazy demo:eager"),
        (24, "captured-run demo:count_users"),  # inside the note
        (29, "captured-run demo:count_users"),  # a colon fence
    ]
    assert found[0].request.rows[0] == ("demo:lazy", "Lazy `select`")


def test_rule_examples_come_from_the_front_matter(tmp_path: Path) -> None:
    (tmp_path / "guides" / "rules").mkdir(parents=True)
    rule = "  code: IO999\n  example: demo:bad\n  use_instead: demo:good\n"
    front = f"---\nrule:\n{rule}---\n"
    body = "# IO999 · demo\n\n```{rule-example} example\n```\n"
    (tmp_path / "guides" / "rules" / "io999.md").write_text(front + body)
    (tmp_path / "index.md").write_text("# Home\n")
    [use] = page_requests(tmp_path)  # use_instead is never shown: not requested
    assert (use.request.key, use.expect) == ("captured-run demo:bad", "error")


# --- The build renders records --------------------------------------------------


def _output(
    result: str = "1", count: int = 1, sql: str = "SELECT 1;", dialect="sqlite"
) -> dict:
    return {
        "count": count,
        "sql": sql,
        "dialect": dialect,
        "had_database": True,
        "error": None,
        "warnings": [],
        "logged": [],
        "returned": result,
        "result": result,
    }


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "snippets").mkdir(parents=True)
    (site / "snippets" / "demo.py").write_text(SNIPPET)
    conf = small_conf("myst_parser", "sphinx_design", "recorded_output")
    (site / "conf.py").write_text(conf)
    (site / "index.md").write_text(f"# Home\n\n{RUN}")
    return site


def _record(site: Path, configuration=DEFAULT, **output: object) -> None:
    request = Request("captured-run", "demo:count_users")
    entry = Entry(_output(**output), outputs.sources(request, site))
    outputs.write_outputs(configuration, {request.key: entry}, root=site)


def test_the_build_shows_the_record_and_where_it_was_made(site: Path) -> None:
    _record(site, result="'recognisable'", sql="SELECT 'recorded';")
    build = build_small_site(site, site / "out")
    assert build.returncode == 0, build.stderr
    page = (site / "out" / "index.html").read_text()
    assert "'recorded'" in page and "'recognisable'" in page
    assert "1 statement sent" in page
    assert "Recorded on SQLite · 2.1; no current record on" in page


def test_configurations_that_differ_get_a_tab_each(site: Path) -> None:
    for configuration in ALL_CONFIGURATIONS:
        marker = "$1" if configuration.engine == "postgresql" else "?"
        sql = f"SELECT {marker};"
        _record(site, configuration, sql=sql, dialect=configuration.engine)
    build = build_small_site(site, site / "out")
    assert build.returncode == 0, build.stderr
    page = (site / "out" / "index.html").read_text()
    assert page.count('class="sd-tab-label"') == 2
    assert "SQLite · 2.1, SQLite · 2.0" in page
    assert "PostgreSQL · 2.1, PostgreSQL · 2.0" in page
    text = BeautifulSoup(page, "html.parser").get_text()
    assert "SELECT $1;" in text and "SELECT ?;" in text


def test_a_missing_record_fails_the_build_with_the_command(site: Path) -> None:
    build = build_small_site(site, site / "out")
    assert build.returncode != 0
    assert "index.md:3: ERROR: captured-run demo:count_users: no output" in build.stderr
    assert "Record it: make record." in build.stderr


def test_a_record_of_other_code_fails_the_build_naming_the_module(site: Path) -> None:
    _record(site)
    (site / "snippets" / "demo.py").write_text(SNIPPET + "# edited\n")
    build = build_small_site(site, site / "out")
    assert build.returncode != 0
    assert (
        "index.md:3: ERROR: captured-run demo:count_users: its recorded output was "
        "made from other code than snippets/demo.py now on disk. Re-record it: "
        "make record."
    ) in build.stderr


def test_a_page_must_not_call_a_failing_run_working(site: Path) -> None:
    request = Request("captured-run", "demo:count_users")
    failed = {**_output(), "error": "ValueError: no", "result": None}
    entry = Entry(failed, outputs.sources(request, site))
    outputs.write_outputs(DEFAULT, {request.key: entry}, root=site)
    build = build_small_site(site, site / "out")
    assert "raised ValueError: no. Fix the snippet, or mark" in build.stderr


# --- The suite records them -----------------------------------------------------

RECORDING_TEST = """
import pytest
from guide_runtime.outputs import Request

@pytest.mark.parametrize("key", ["captured-run models:sample_users"])
def test_it(key, page_outputs):
    page_outputs.check(Request("captured-run", "models:sample_users"), {"n": N})
"""


def test_the_suite_compares_and_records(pytester: pytest.Pytester) -> None:
    # Records and snippets belong to the run's project: here, pytester's folder.
    (pytester.path / "snippets").mkdir()
    (pytester.path / "snippets" / "models.py").write_text("x = 1\n")
    (pytester.path / "index.md").write_text(
        "# Home\n\n```{captured-run} models:sample_users\n```\n"
    )
    pytester.makeconftest(conftest_text())
    pytester.makepyfile(test_demo=RECORDING_TEST.replace("N", "1"))
    run = [*INNER_RUN_PLUGINS_OFF, "-p", "no:asyncio", "-n", "0"]
    first = pytester.runpytest_inprocess(*run)
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*no output is recorded on*make record*"])
    pytester.runpytest_inprocess(*run, "--record-outputs").assert_outcomes(passed=1)
    # The run records the configuration it runs on, whichever suite runs it.
    written = json.loads(outputs.outputs_path(current(), pytester.path).read_text())
    assert written["captured-run models:sample_users"]["output"] == {"n": 1}
    pytester.runpytest_inprocess(*run).assert_outcomes(passed=1)
    # A current record is not run again by what make serve runs before a build.
    again = pytester.runpytest_inprocess(*run, "--record-outputs", "--only-stale")
    again.assert_outcomes(deselected=1)
    # Another module: an in-process run could reuse the first one's bytecode.
    (pytester.path / "test_demo.py").unlink()
    pytester.makepyfile(test_changed=RECORDING_TEST.replace("N", "2"))
    changed = pytester.runpytest_inprocess(*run)
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(
        ["*another output than it does now*", '*- "n": 1*', '*+ "n": 2*']
    )
