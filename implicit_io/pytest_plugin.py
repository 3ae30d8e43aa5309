"""The toolkit in pytest: guard every session of a test run, budget statements.

Installed with the package as a ``pytest11`` entry point, so a service's suite
gets it without code changes. It does nothing until asked:

- ``--implicit-io=off|track|enforce`` (ini ``implicit_io``, default ``off``):
  ``enforce`` fails the test that caused an implicit load, ``track`` lets it pass
  and prints a summary at the end of the run;
- ``--implicit-io-allow=PATH`` (ini ``implicit_io_allow``): the allow-list file;
- ``--implicit-io-report=PATH``: a JSON report of the run's loads (per rule and
  attribute: count, first file:line, tests), merged across pytest-xdist workers;
  ``implicit-io-report merge`` merges the reports of several CI shards;
- ``--implicit-io-baseline=PATH`` (ini ``implicit_io_baseline``): accepted debt,
  reported but passing; ``--implicit-io-baseline-write`` records this run's loads
  there;
- ``@pytest.mark.max_statements(N)`` and the ``statement_budget`` fixture.

Under pytest-xdist each worker guards its own tests and sends its report to the
controller, whose summary counts every worker's loads. The plugin's tests of
async code need pytest-asyncio (or anyio), as any async test does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import pytest
import sqlalchemy

from implicit_io.allow_list import AllowListError, load_allow_list
from implicit_io.guard import (
    ImplicitIOError,
    ImplicitIOGuard,
    ImplicitLoad,
    Mode,
    explain_detached,
    parse_mode,
)
from implicit_io.report import Baseline, Report, ReportError, summary
from implicit_io.statement_budgets import StatementBudget, max_statements

_GUARD_KEY = pytest.StashKey[ImplicitIOGuard]()
_LOADS_KEY = pytest.StashKey[list[ImplicitLoad]]()
_REPORT_KEY = pytest.StashKey[Report]()
_BASELINE_KEY = pytest.StashKey["Baseline | None"]()
_TEST_KEY = pytest.StashKey[list[str]]()  # the test running now (one element)
_PARTIAL_KEY = pytest.StashKey[list[str]]()  # why the run was not the whole suite
_KEPT_KEY = pytest.StashKey[int]()  # baseline entries a partial run kept
_REPORTED_KEY = pytest.StashKey[set[str]]()  # xdist workers whose report arrived
#: The loads of the test attempt running now, not in the report yet: an attempt
#: that pytest-rerunfailures reruns (its report's outcome is "rerun") is dropped.
_ATTEMPT_KEY = pytest.StashKey[list[tuple[ImplicitLoad, "str | None"]]]()
#: The key of a worker's report in pytest-xdist's ``workeroutput``.
WORKER_OUTPUT = "implicit_io_report"
WORKER_PARTIAL = "implicit_io_partial"
CRASHED = "worker"  # how a partial reason naming a worker that died starts


# region options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("implicit-io", "implicit ORM I/O (implicit_io)")
    group.addoption(
        "--implicit-io",
        dest="implicit_io",
        choices=[mode.value for mode in Mode],
        help="guard every SQLAlchemy session: off (default), track (report, pass), "
        "enforce (fail the test that loaded implicitly)",
    )
    group.addoption(
        "--implicit-io-allow",
        dest="implicit_io_allow",
        metavar="PATH",
        help="TOML allow-list of accepted implicit loads (rule IO401)",
    )
    group.addoption(
        "--implicit-io-report",
        dest="implicit_io_report",
        metavar="PATH",
        help="write a JSON report of the run's implicit loads (merge shards with "
        "implicit-io-report merge)",
    )
    group.addoption(
        "--implicit-io-baseline",
        dest="implicit_io_baseline",
        metavar="PATH",
        help="JSON baseline of accepted loads: reported, passing; new ones fail "
        "in enforce mode",
    )
    group.addoption(
        "--implicit-io-baseline-write",
        dest="implicit_io_baseline_write",
        action="store_true",
        help="record this run's loads as the baseline (at --implicit-io-baseline)",
    )
    parser.addini("implicit_io", "guard mode: off, track or enforce", default="off")
    parser.addini("implicit_io_allow", "path of the allow-list file", default="")
    parser.addini("implicit_io_baseline", "path of the baseline file", default="")


# endregion options


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "max_statements(n): fail the test if its body sends more than n SQL "
        "statements (rule IO402)",
    )
    value = config.getoption("implicit_io") or config.getini("implicit_io")
    try:
        mode = parse_mode(value.strip())
    except ValueError as error:
        raise pytest.UsageError(f"--implicit-io / ini implicit_io: {error}") from None
    allow_path = _path(config, "implicit_io_allow")
    try:  # checked in every mode, so a bad entry fails before anyone enables one
        allow = load_allow_list(allow_path) if allow_path else []
    except AllowListError as error:
        raise pytest.UsageError(f"implicit-io allow-list: {error}") from None
    baseline_path = _path(config, "implicit_io_baseline")
    writing = config.getoption("implicit_io_baseline_write")
    if writing and not baseline_path:
        raise pytest.UsageError(
            "--implicit-io-baseline-write: say where, with --implicit-io-baseline="
            "PATH or the ini key implicit_io_baseline"
        )
    try:
        baseline = (
            Baseline.read(baseline_path) if baseline_path and not writing else None
        )
    except ReportError as error:
        raise pytest.UsageError(f"implicit-io baseline: {error}") from None
    if mode is Mode.OFF:
        return
    loads: list[ImplicitLoad] = []
    report = Report()
    current: list[str] = [""]
    attempt: list[tuple[ImplicitLoad, str | None]] = []

    def on_load(load: ImplicitLoad) -> None:
        attempt.append((load, current[0] or None))  # to the report once it counts
        if baseline is None or (load.rule, load.attribute) not in baseline:
            loads.append(load)  # the loads that fail a test in enforce mode

    guard = ImplicitIOGuard(
        mode,
        allow=allow,
        on_load=on_load,
        baseline=baseline.keys if baseline is not None else (),
        # Named from the rootdir, as pytest names the tests: not from the working
        # directory, which a test may change (and not change back), nor from where
        # pytest was started, which CI steps differ in; either would make one
        # run's report name other places than the workers' or the shards'.
        root=config.rootpath,
    )
    guard.install_on_every_session()
    config.stash[_GUARD_KEY] = guard
    config.stash[_LOADS_KEY] = loads
    config.stash[_REPORT_KEY] = report
    config.stash[_BASELINE_KEY] = baseline
    config.stash[_TEST_KEY] = current
    config.stash[_PARTIAL_KEY] = []
    config.stash[_ATTEMPT_KEY] = attempt
    config.pluginmanager.register(_Attempts(config), "implicit_io_attempts")


def _path(config: pytest.Config, name: str) -> str:
    """An option's path as given (relative to the cwd), else the ini's, relative
    to the rootdir; "" when neither is set."""
    given = config.getoption(name)
    if given:
        return given
    from_ini = config.getini(name)
    return str(config.rootpath / from_ini) if from_ini else ""


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workeroutput")


def _count_attempt(config: pytest.Config) -> None:
    attempt = config.stash.get(_ATTEMPT_KEY, None)
    if attempt:
        report = config.stash[_REPORT_KEY]
        for load, test in attempt:
            report.add(load, test)
        attempt.clear()


class _Attempts:
    """Counts a test attempt's loads when the next one starts, or the run ends;
    drops them if the attempt is rerun (pytest-rerunfailures), so that a test
    rerun until it passes counts the loads of one attempt, its last."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logstart(self) -> None:
        _count_attempt(self.config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":
            self.config.stash[_ATTEMPT_KEY].clear()


def pytest_collection_finish(session: pytest.Session) -> None:
    # No test has run yet: what failed is collection (--continue-on-collection-errors
    # runs the rest).
    partial = session.config.stash.get(_PARTIAL_KEY, None)
    if partial is not None and session.testsfailed:
        partial.append(f"{session.testsfailed} file(s) failed to collect")


def pytest_deselected(items: list[pytest.Item]) -> None:
    partial = items[0].config.stash.get(_PARTIAL_KEY, None) if items else None
    if partial is not None:
        partial.append(f"{len(items)} test(s) deselected")


def _why_partial(session: pytest.Session, exitstatus: int) -> list[str]:
    """Why this run stopped before running every test it collected, or left
    some out, as --lf does ([] if neither); what collection deselected or failed
    to collect is in the stash already."""
    config = session.config
    reasons = []
    for stop in (session.shouldfail, session.shouldstop):  # -x, --maxfail, --sw
        if stop:
            reasons.append(str(stop) if isinstance(stop, str) else "stopped early")
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        reasons.append(f"exit status {int(exitstatus)}")
    lf = config.pluginmanager.get_plugin("lfplugin")
    if config.getoption("lf", False) and getattr(lf, "lastfailed", None):
        reasons.append("--lf")
    return reasons


def _write_baseline(config: pytest.Config, report: Report, partial: list[str]) -> int:
    """Write this run's baseline; after a partial run, keep the entries of the
    existing file that it did not see. Returns the kept entries' count."""
    path = _path(config, "implicit_io_baseline")
    baseline = Baseline.of(report)
    kept = 0
    if partial:
        try:
            old = Baseline.read(path)
        except ReportError:  # none yet (or unreadable): nothing to keep
            old = Baseline({})
        kept = len(old.counts.keys() - baseline.counts.keys())
        baseline = Baseline({**baseline.counts, **old.counts})
    baseline.write(path)
    return kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    report = config.stash.get(_REPORT_KEY, None)
    if report is None:
        return
    partial = _why_partial(session, exitstatus)
    _count_attempt(config)
    guard = config.stash[_GUARD_KEY]
    for key, count in guard.allowed_counts.items():
        report.allowed[key] = report.allowed.get(key, 0) + count
    guard.allowed_counts.clear()
    if _is_worker(config):  # to the controller, which merges every worker's
        config.workeroutput[WORKER_OUTPUT] = report.to_dict()
        config.workeroutput[WORKER_PARTIAL] = partial + config.stash[_PARTIAL_KEY]
        return
    config.stash[_PARTIAL_KEY] += partial  # with collection's and the workers'
    if config.getoption("implicit_io_report"):
        report.write(config.getoption("implicit_io_report"))
    if config.getoption("implicit_io_baseline_write"):
        kept = _write_baseline(config, report, config.stash[_PARTIAL_KEY])
        config.stash[_KEPT_KEY] = kept


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist: a worker finished; add its report to the controller's.

    Once: a worker stopped by ``pytest.exit`` or Ctrl-C is reported down twice
    (finished, then as an error), with the same output.
    A worker that died (``os._exit``, a signal, a crash) sends no report: the loads
    of the tests it ran are lost, so the run is partial, and says so.
    """
    report = node.config.stash.get(_REPORT_KEY, None)
    if report is None:
        return
    reported = node.config.stash.setdefault(_REPORTED_KEY, set())
    output = getattr(node, "workeroutput", {}).pop(WORKER_OUTPUT, None)
    if output is not None:
        reported.add(node.gateway.id)
        report.merge(Report.from_dict(output, f"worker {node.gateway.id}"))
        partial = node.workeroutput.get(WORKER_PARTIAL, [])
        node.config.stash[_PARTIAL_KEY].extend(partial)
    elif node.gateway.id not in reported:
        node.config.stash[_PARTIAL_KEY].append(
            f"{CRASHED} {node.gateway.id} died before sending its report; the "
            "loads of the tests it ran are not counted"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD_KEY, None)
    if guard is not None:
        guard.remove_from_every_session()
        del config.stash[_GUARD_KEY]


@contextmanager
def _failing_on_loads(item: pytest.Item, phase: str) -> Iterator[None]:
    """Around one phase of a test: in enforce mode, fail it for each implicit load.

    The guard already raised at the load; the test may have swallowed that
    error (a web framework's error handler), so the plugin fails it regardless.
    """
    guard = item.config.stash.get(_GUARD_KEY, None)
    if guard is None:
        yield
        return
    loads = item.config.stash[_LOADS_KEY]
    loads.clear()
    item.config.stash[_TEST_KEY][0] = item.nodeid
    try:
        yield
    except ImplicitIOError:
        loads.clear()
        raise  # the guard's own error names the load already
    except BaseException as error:
        explained = explain_detached(error)
        if explained is not None:
            error.add_note(f"implicit-io: {explained}")
        if guard.mode is Mode.ENFORCE and loads:
            raise _failure(item, phase, loads) from error
        raise
    else:
        if guard.mode is Mode.ENFORCE and loads:
            raise _failure(item, phase, loads)
    finally:
        loads.clear()
        item.config.stash[_TEST_KEY][0] = ""


def _failure(item: pytest.Item, phase: str, loads: list[ImplicitLoad]) -> Exception:
    lines = "\n".join(f"  {load}" for load in loads)
    message = f"implicit I/O during {phase} of {item.nodeid}:\n{lines}"
    return pytest.fail.Exception(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    __tracebackhide__ = True  # a fixture's error is the suite's, not ours
    with _failing_on_loads(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    __tracebackhide__ = True  # a fixture's error is the suite's, not ours
    with _failing_on_loads(item, "teardown"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    __tracebackhide__ = True
    marker = item.get_closest_marker("max_statements")
    with _failing_on_loads(item, "call"):
        if marker is None:
            return (yield)
        with max_statements(None, _budget_of(item, marker)):
            return (yield)


#: Where an implicit load's traceback runs after the line that loaded: SQLAlchemy's
#: loader, then the guard (this package).
_LOADER_FRAMES = (Path(sqlalchemy.__file__).parent, Path(__file__).parent)


def _in_the_loader(tb: TracebackType) -> bool:
    path = Path(tb.tb_frame.f_code.co_filename)
    return any(map(path.is_relative_to, _LOADER_FRAMES))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    # A failure at an implicit load ends at the line that loaded (the error names
    # it too): the loader's and the guard's frames after it are left out, as pytest
    # leaves out its own. Each frame shown also costs pytest a parse of its module,
    # and SQLAlchemy's are large: about 0.3 s per failure here.
    excinfo = call.excinfo
    if excinfo is None or not excinfo.errisinstance(ImplicitIOError):
        return
    if item.config.getoption("fulltrace"):
        return  # --full-trace: every frame, as asked
    entries: list[TracebackType] = []
    tb = excinfo.tb
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    while entries and _in_the_loader(entries[-1]):
        entries.pop()
    if not entries:
        return  # nothing but the loader: show it all
    # A chain of its own: pytest cuts a traceback at the test by following the
    # frames' links, so the entries shown must be linked to each other.
    chain = None
    for entry in reversed(entries):
        chain = TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    # The one reach into pytest's internals: its Traceback class (not public API),
    # built from a raw traceback as pytest builds its own. If an upgrade changes
    # that, the failure keeps every frame (test_pytest_plugin's
    # test_enforce_fails_exactly_the_test_that_lazy_loads then fails, saying so).
    with suppress(Exception):
        excinfo.traceback = type(excinfo.traceback)(chain)


def _budget_of(item: pytest.Item, marker: pytest.Mark) -> int:
    limit = marker.args[0] if len(marker.args) == 1 and not marker.kwargs else None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        pytest.fail(
            f"{item.nodeid}: write @pytest.mark.max_statements(N) with a count N >= 0",
            pytrace=False,
        )
    return limit


# region fixture
@pytest.fixture
def statement_budget() -> StatementBudget:
    """Budgets on every engine: ``with statement_budget.exactly(2): ...``."""
    return StatementBudget()


# endregion fixture


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    guard = config.stash.get(_GUARD_KEY, None)
    if guard is None:
        return
    terminalreporter.write_sep("=", f"implicit I/O ({guard.mode.value})")
    report = config.stash[_REPORT_KEY]
    for line in summary(report, config.stash[_BASELINE_KEY]):
        terminalreporter.write_line(line)
    for option, what in (
        ("implicit_io_report", "report"),
        ("implicit_io_baseline_write", "baseline"),
    ):
        if config.getoption(option):
            where = (
                config.getoption("implicit_io_report")
                if what == "report"
                else _path(config, "implicit_io_baseline")
            )
            terminalreporter.write_line(f"implicit-io {what} written to {where}")
    partial = sorted(set(config.stash[_PARTIAL_KEY]))
    for reason in partial:
        if reason.startswith(CRASHED):
            terminalreporter.write_line(f"implicit-io: {reason}")
    if config.getoption("implicit_io_baseline_write") and partial:
        terminalreporter.write_line(
            f"implicit-io baseline: a partial run ({'; '.join(partial)}): kept the "
            f"{config.stash.get(_KEPT_KEY, 0)} existing entr(ies) it did not see"
        )
