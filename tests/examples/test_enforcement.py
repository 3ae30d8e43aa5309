from pathlib import Path

import pytest
import queryspy
from packaging.utils import canonicalize_name
from pytest_queryguard import NPlusOneDetected
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from guide_runtime import configurations
from guide_runtime.capture import table_rows
from guide_runtime.configurations import ROOT
from guide_runtime.measurement import load_measurement
from guide_runtime.outputs import load_outputs
from implicit_io.guard import ImplicitIOError
from snippets.counting_statements import record_statements
from snippets.enforcement import (
    CASES,
    REQUEST_PATH_EXCEPTIONS,
    TOOLS,
    WORKLOADS,
    EnforcedArticle,
    _Case,
    _overhead_rows,
    author_digest,
    awaitable_attrs_in_a_loop,
    deferred_column,
    eager_loaded,
    enforce_on_a_lazy_load,
    expired_after_commit,
    explicit_queries_in_a_loop,
    guarded_session_factories,
    install_our_guard,
    lazy_loads_inside_run_sync,
    lazy_one_to_many,
    many_to_one_identity_map_hit,
    many_to_one_identity_map_miss,
    mapping_check_report,
    measure_overhead,
    nightly_report,
    one_awaitable_attribute,
    refresh_named_attributes,
    review_check_report,
    run_with_queryguard,
    run_with_queryspy,
    server_onupdate_value,
    track_an_n_plus_one,
    tracked_loads_by_release,
)

# What each tool says, per scenario: the comparison page's claims.
EXPECTED = {
    lazy_one_to_many: ("IO102", "IO102", "-", "-"),
    many_to_one_identity_map_hit: ("-", "-", "-", "-"),
    many_to_one_identity_map_miss: ("IO102", "IO102", "-", "-"),
    expired_after_commit: ("IO201", "IO201", "-", "-"),
    deferred_column: ("IO107", "IO107", "-", "-"),
    server_onupdate_value: ("IO203", "IO203", "-", "-"),
    awaitable_attrs_in_a_loop: ("IO106", "IO106", "N+1", "N+1"),
    lazy_loads_inside_run_sync: ("IO101", "IO101", "N+1", "N+1"),
    explicit_queries_in_a_loop: ("-", "IO101", "N+1", "-"),
    eager_loaded: ("-", "-", "-", "-"),
    one_awaitable_attribute: ("-", "-", "-", "-"),
    refresh_named_attributes: ("-", "-", "-", "-"),
}


@pytest.fixture(scope="module")
def table() -> list[list[str]]:
    """The comparison table as the page shows it: the record of this configuration,
    which tests/examples/test_page_outputs.py proves is what the function computes."""
    recorded = load_outputs(configurations.current())
    return recorded["generated-table enforcement:_comparison_rows"].output


def test_the_table_covers_every_case_and_tool(table: list[list[str]]) -> None:
    header, *rows = table
    assert header == ["Scenario", "Should report", *TOOLS.values()]
    assert [row[0] for row in rows] == [case.label for case in CASES]
    assert {case.scenario for case in CASES} == EXPECTED.keys()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.label)
def test_each_tool_says_what_the_page_claims(table, case: _Case) -> None:
    row = next(row for row in table if row[0] == case.label)
    said = tuple(cell.removeprefix("reported ") for cell in row[3:])
    assert row[1] == ("yes" if case.should_report else "no")
    assert said == EXPECTED[case.scenario]


def test_no_tool_flags_clean_code_and_ours_misses_nothing(table) -> None:
    for case, row in zip(CASES, table[1:], strict=True):
        if not case.should_report:
            assert not any(cell.startswith("reported") for cell in row[2:]), row
        else:
            assert row[4].startswith("reported"), row


def test_without_a_tool_implicit_io_fails_with_missing_greenlet(table) -> None:
    for case, row in zip(CASES, table[1:], strict=True):
        expected = (
            "fails: MissingGreenlet"
            if EXPECTED[case.scenario][0]
            in (
                "IO102",
                "IO201",
                "IO107",
                "IO203",
            )
            else "runs"
        )
        assert row[2] == expected, row


async def test_each_tool_run_reports_the_n_plus_one_its_own_way(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        with pytest.raises(queryspy.NPlusOneError):
            await run_with_queryspy(awaitable_attrs_in_a_loop, session)
    async with session_factory() as session:
        with pytest.raises(NPlusOneDetected):
            await run_with_queryguard(awaitable_attrs_in_a_loop, session)
    install_our_guard(session_factory)
    async with session_factory() as session:
        with pytest.raises(ImplicitIOError) as raised:
            await awaitable_attrs_in_a_loop(session)
    assert raised.value.rule == "IO106"


async def test_each_tool_run_lets_clean_code_through(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    expected = {"ada": (2, 2), "grace": (1, 1), "linus": (0, 0)}
    install_our_guard(session_factory, repeated_query_threshold=2)
    for run in (run_with_queryspy, run_with_queryguard):
        async with session_factory() as session:
            await run(eager_loaded, session)
    async with session_factory() as session:
        assert await eager_loaded(session) == expected


@pytest.mark.seed("enforcement:_seed_article")
async def test_the_database_bumps_the_revision_on_update(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    article = await session.scalar(select(EnforcedArticle))
    assert article.revision == 1
    article.title = "Renamed"
    await session.commit()
    assert await session.scalar(select(EnforcedArticle.revision)) == 2


async def test_guard_overhead_per_statement_is_small(engine: AsyncEngine) -> None:
    # Best of eight short alternating rounds: on a shared machine a busy moment
    # must not land in every round of one variant (make bench measures properly;
    # it found ratios of 0.9 to 1.1, well inside this bound).
    measured = await measure_overhead(engine, iterations=20, rounds=8)
    for label, (plain, guarded) in measured.items():
        # A loose bound: the ratio in one run, never an absolute time.
        assert guarded / plain < 2.0, (label, plain, guarded)


async def test_overhead_rows_report_a_ratio_per_workload() -> None:
    header, *rows = await _overhead_rows(iterations=20, rounds=1)
    assert header[-1] == "Ratio"
    assert [row[0] for row in rows] == [label for label, _, _ in WORKLOADS]
    assert all(float(row[-1]) > 0 for row in rows)


async def test_requests_enforce_and_workers_track_in_one_process(engine) -> None:
    requests, workers = guarded_session_factories(engine)
    async with requests() as session:
        # The documented exception is let through...
        assert await awaitable_attrs_in_a_loop(session)
        # ...anything else is refused.
        with pytest.raises(ImplicitIOError, match="IO101"):
            await lazy_loads_inside_run_sync(session)
    async with workers() as session:
        assert await lazy_loads_inside_run_sync(session)  # tracked, not refused
    assert workers.implicit_io_guard.counts == {("IO101", "User.roles"): 1}
    assert requests.implicit_io_guard.allowed_counts == {("IO106", "User.posts"): 1}
    assert REQUEST_PATH_EXCEPTIONS[0].rationale


async def test_a_clean_worker_job_runs_under_enforce(engine) -> None:
    _, workers = guarded_session_factories(engine)
    assert await nightly_report(workers) == {
        "ada": (2, 2),
        "grace": (1, 1),
        "linus": (0, 0),
    }


async def test_enforce_demo_refuses_the_lazy_load(engine) -> None:
    with record_statements(engine) as log, pytest.raises(ImplicitIOError) as raised:
        await enforce_on_a_lazy_load(async_sessionmaker(engine))
    assert (raised.value.rule, raised.value.attribute) == ("IO102", "User.posts")
    assert log.count == 1  # the user query; the lazy load never went out


async def test_track_demo_logs_once_and_counts(engine) -> None:
    result = await track_an_n_plus_one(async_sessionmaker(engine))
    [logged] = result["logged"]
    assert logged["rule"] == "IO106"
    assert logged["call_site"].endswith("in awaitable_attrs_in_a_loop")
    assert result["counts"] == {("IO106", "User.posts"): 1}


def test_mapping_and_review_reports_find_the_legacy_relationships() -> None:
    mapped = mapping_check_report()
    reviewed = review_check_report()
    assert [line.split(": ", 1)[1][:5] for line in mapped] == ["IO104", "IO105"]
    assert [line.split(": ", 1)[1][:5] for line in reviewed] == ["IO104", "IO105"]
    # Both point at the same declarations.
    assert [m.split(":")[1] for m in mapped] == [r.split(":")[1] for r in reviewed]


def test_generated_table_refuses_what_is_not_a_table(table) -> None:
    assert table[0][0] == "Scenario"
    with pytest.raises(ValueError, match="a header row first"):
        table_rows("enforcement:mapping_check_report")  # a list of strings
    with pytest.raises(LookupError, match="defines no 'missing'"):
        table_rows("enforcement:missing")


# --- The overhead table: measured by `make bench`, never during a build ----------

OVERHEAD_FILE = ROOT / "guides" / "measured" / "guard-overhead.json"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[canonicalize_name(name)] = version.split(";")[0].strip()
    return pins


def test_the_overhead_was_measured_on_the_pinned_versions() -> None:
    measured = load_measurement(OVERHEAD_FILE).packages
    pins = _pins()
    stale = {
        name: (version, pins.get(canonicalize_name(name)))
        for name, version in measured.items()
        if pins.get(canonicalize_name(name)) != version
    }
    assert not stale, (
        f"{OVERHEAD_FILE.relative_to(ROOT)} was measured with other versions than "
        f"requirements.txt pins (measured, pinned): {stale}. Run `make bench` and "
        "commit the file."
    )


def test_the_overhead_file_has_the_tables_header() -> None:
    header, *rows = load_measurement(OVERHEAD_FILE).rows
    assert header[-1] == "Ratio"
    assert [row[0] for row in rows] == [label for label, _, _ in WORKLOADS]


@pytest.mark.parametrize("content", [None, "{}", '{"rows": [["a"]]}'])
def test_a_bad_measurement_file_names_itself_and_the_fix(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "overhead.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match="Run `make bench`") as raised:
        load_measurement(path)
    assert str(path) in str(raised.value)


def test_the_page_says_when_and_where_it_was_measured(built_site: Path) -> None:
    page = (built_site / "guides" / "enforcement.html").read_text()
    measurement = load_measurement(OVERHEAD_FILE)
    assert measurement.where() in page
    assert f"{measurement.machine.cpus} CPUs" in page


def test_the_tracked_count_falls_release_by_release() -> None:
    lines = tracked_loads_by_release()
    rows = [[int(cell) for cell in line.split()] for line in lines[1:]]
    # release, loads, new, baseline entries still seen, removable
    assert rows == [[1, 6, 0, 2, 0], [2, 3, 0, 1, 1], [3, 0, 0, 0, 2]]
    assert author_digest.__name__ == "author_digest"  # run by the line above
