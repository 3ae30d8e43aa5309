from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from executed_store import STORE_VARIABLE
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests import configurations
from tests.harness import (
    DatabaseURLError,
    Seed,
    add_nothing,
    add_sample_data,
    check_database_url,
    database_url,
    database_versions,
    drop_leftover_schemas,
    fresh_database,
    load_callable,
    session_factory_for,
)

ROOT = Path(__file__).resolve().parent.parent
# A service's own test suite, run by tests/test_pytest_plugin.py, not by this one.
collect_ignore = ["toolkit/sample_service"]


#: What `make html` builds; the browser suite (tests/browser) serves it.
SITE_DIR = ROOT / "_build" / "html"


def site_dir() -> Path:
    """The default suite builds where `make html` does; another configuration's
    suite builds beside it, so the suites never overwrite each other's output."""
    here = configurations.current()
    return (
        ROOT
        / "_build"
        / ("html" if here == configurations.DEFAULT else f"{here.key}/html")
    )


STRICT_BUILD = [
    sys.executable,
    "-m",
    "sphinx",
    "-b",
    "html",
    "-n",
    "-W",
    "--keep-going",
    "-j",
    # As make does (see SPHINX_JOBS in the Makefile): one process more than CPUs.
    str(len(os.sched_getaffinity(0)) + 1),
]
# Every build the suite starts, of the checkout or of a copy, reuses the results
# `make html` and `make serve` stored: a key names content, never a path.
os.environ.setdefault(STORE_VARIABLE, str(ROOT / "_build" / ".executed"))


def _seed_of(request: pytest.FixtureRequest) -> Seed:
    """The seed the closest ``seed`` marker names, else the sample data."""
    marker = request.node.get_closest_marker("seed")
    if marker is None:
        return add_sample_data
    if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str):
        pytest.fail(
            f"{request.node.nodeid}: write @pytest.mark.seed('module:_seed'), naming "
            "an async function(session) in snippets/ that adds the starting rows",
            pytrace=False,
        )
    return load_callable(marker.args[0])


@pytest.fixture
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """A new database for this test alone, with the sample data loaded.

    ``@pytest.mark.seed("deferred_columns:_add_reports")`` on a test (or as the
    module's ``pytestmark``) seeds it with that snippet function instead, as
    ``:seed:`` does on a page; ``session_factory`` and ``session`` follow. (By
    name, because ``pytest.mark.seed(function)`` would decorate the function.)
    """
    async with fresh_database(_seed_of(request)) as engine:
        yield engine


@pytest.fixture
async def empty_engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_database(add_nothing) as engine:
        yield engine


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory_for(engine)


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


# The strict site build runs in a second process while the other tests run, so
# `make test` costs about max(build, tests) rather than their sum on two cores.
# Under pytest-xdist (`-n auto`) the controller starts it, for a whole-suite run,
# before the workers start; they wait for it under a file lock and take its result
# from the lock file. Otherwise the first worker whose test needs the site builds
# it, under the same lock, and the others take its result.
_site_build: subprocess.Popen[str] | None = None
SITE_BUILD_LOCK = ROOT / "_build" / ".site-build.lock"
#: The worker input naming the controller's build of the site (by a token).
SITE_BUILD_INPUT = "guide_site_build"
_SITE_BUILD_TOKEN = pytest.StashKey[str]()


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _start_site_build() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STRICT_BUILD, str(ROOT), str(site_dir())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # What is loaded by now (SQLAlchemy, Sphinx, the collected tests) lives until the
    # run ends: keep it out of every later garbage collection. A full collection
    # (the harness forces one after each failed load) then scans what the test made,
    # not the whole process, as capture() does inside a build.
    gc.freeze()
    global _site_build
    wants_site = any(
        "built_site" in getattr(item, "fixturenames", ()) for item in session.items
    )
    if wants_site and _site_build is None and not _xdist_worker(session.config):
        _site_build = _start_site_build()


def _locked(path: Path) -> IO[str]:
    """``path`` opened and locked for this process alone, until it is closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    return lock


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[IO[str]]:
    """``path`` locked for the block: xdist workers, and suites run side by side,
    take turns."""
    with _locked(path) as lock:
        yield lock


def _record_site_build(
    lock: IO[str], run: str | None, process: subprocess.Popen[str]
) -> dict[str, object]:
    """The build's result, once it ends, written into the lock file under ``run``."""
    output, _ = process.communicate()
    result = {"run": run, "site": str(site_dir())}
    result |= {"returncode": process.returncode, "output": output}
    lock.seek(0)
    lock.truncate(0)
    lock.write(json.dumps(result))
    return result


def _whole_suite(config: pytest.Config) -> bool:
    """No test named, selected or deselected on the command line."""
    named = config.args_source != pytest.Config.ArgsSource.TESTPATHS
    return not (named or config.option.keyword or config.option.markexpr)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    distributing = config.pluginmanager.has_plugin("dsession")
    if not distributing or _xdist_worker(config) or not _whole_suite(config):
        return
    token = f"controller-{uuid.uuid4().hex}"
    lock = _locked(SITE_BUILD_LOCK)  # held until the result is in it
    process = _start_site_build()

    def record() -> None:
        try:
            _record_site_build(lock, token, process)
        finally:
            lock.close()

    threading.Thread(target=record, daemon=True).start()
    config.stash[_SITE_BUILD_TOKEN] = token


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """(xdist, in the controller) Tell each worker which build of the site is its."""
    token = node.config.stash.get(_SITE_BUILD_TOKEN, None)
    if token is not None:
        node.workerinput[SITE_BUILD_INPUT] = token


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest) -> Path:
    """The site, built strictly (-n -W): a warning anywhere fails every site test."""
    # Under xdist the workers share one build per run: the controller's, or else the
    # first worker's; the others find its result in the lock file, by its id.
    workerinput = getattr(request.config, "workerinput", {})
    run = workerinput.get(SITE_BUILD_INPUT) or workerinput.get("testrunuid")
    key = {"run": run, "site": str(site_dir())}
    with file_lock(SITE_BUILD_LOCK) as lock:
        lock.seek(0)
        try:
            result = json.loads(lock.read())
        except ValueError:
            result = {}
        if run is None or {k: result.get(k) for k in key} != key:
            result = _record_site_build(lock, run, _site_build or _start_site_build())
    if result["returncode"] != 0:
        pytest.fail(f"strict Sphinx build failed:\n{result['output']}", pytrace=False)
    return site_dir()


# --- Configurations: only_on markers and proof records ---------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-proofs",
        action="store_true",
        help="after a whole-suite run, write proofs/<configuration>.json: each "
        "test's outcome on this configuration, read by the site build",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Skip tests whose ``only_on`` excludes this configuration; refuse bad markers."""
    here = configurations.current()
    for item in items:
        for marker in item.iter_markers("only_on"):
            problem = configurations.only_on_problem(marker.kwargs, marker.args)
            if problem:
                raise pytest.UsageError(
                    f"{item.nodeid}: its only_on marker {problem}; "
                    + configurations.ONLY_ON_HELP
                )
            if not configurations.runs_on(marker.kwargs, here):
                where = configurations.describe_only_on(marker.kwargs)
                reason = f"only on {where}: {marker.kwargs['reason']}"
                item.add_marker(pytest.mark.skip(reason=reason))


class _ProofRecorder:
    """Each test's outcome in this run; written as the suite's proof record."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "failed"
        elif report.when == "call" or report.failed or report.skipped:
            outcome = report.outcome
        else:
            return
        # The worst phase wins: a teardown error fails a test whose call passed.
        if self.outcomes.get(report.nodeid) not in ("failed", "skipped"):
            self.outcomes[report.nodeid] = outcome


#: The user property a ``record_capture`` call adds to its test's report.
CAPTURE_PROPERTY = "guide-capture"


class _CaptureRecorder:
    """Output that tests recorded for the page, by name: (test id, text)."""

    def __init__(self) -> None:
        self.captures: dict[str, tuple[str, str]] = {}
        #: Names two tests recorded, each in its own xdist worker.
        self.clashes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key != CAPTURE_PROPERTY:
                continue
            name, text = value
            test, _ = self.captures.get(name, (report.nodeid, ""))
            if test != report.nodeid:
                self.clashes.append(f"{name!r} by {test} and {report.nodeid}")
            self.captures[name] = (report.nodeid, text)


def pytest_configure(config: pytest.Config) -> None:
    # One clear error for a database the suite cannot or must not use, before
    # any test touches it (not a traceback per test).
    try:
        check_database_url()
    except DatabaseURLError as error:
        raise pytest.UsageError(str(error)) from None
    config.pluginmanager.register(_CaptureRecorder(), "guide-capture-recorder")
    if config.getoption("--record-proofs"):
        config.pluginmanager.register(_ProofRecorder(), "guide-proof-recorder")


@pytest.fixture
def record_capture(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``record_capture(name, text)``: this test's output for ``captured-variants``.

    Call it after the assertions that prove the output. A ``--record-proofs`` run
    writes the captures of passing tests to proofs/captures/<configuration>.json.
    The object id SQLAlchemy puts in an anonymous parameter's name
    (``%(140093915550480 param)s``) is written as ``%(id param)s``, so a record
    changes only when the behaviour does.
    """
    recorder = request.config.pluginmanager.get_plugin("guide-capture-recorder")

    def record(name: str, text: str) -> None:
        text = re.sub(r"%\(\d+ (\w+)\)s", r"%(id \1)s", text)
        test, _ = recorder.captures.get(name, (request.node.nodeid, ""))
        if test != request.node.nodeid:
            pytest.fail(f"capture {name!r} is already recorded by {test}")
        recorder.captures[name] = (request.node.nodeid, text)
        # The report carries it to the process that writes records (under xdist,
        # the controller, which runs no test itself).
        request.node.user_properties.append((CAPTURE_PROPERTY, (name, text)))

    return record


def _runs_the_whole_suite(config: pytest.Config) -> bool:
    option = config.option
    narrowed = option.keyword or option.markexpr or getattr(option, "deselect", None)
    return not narrowed and config.args == config.getini("testpaths")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if configurations.current().engine == "postgresql":
        # Every fresh database drops its schema; this catches an interrupted one.
        asyncio.run(drop_leftover_schemas(database_url()))
    if not config.getoption("--record-proofs") or exitstatus not in (0, 1):
        return
    if _xdist_worker(config):
        return  # the controller saw every worker's reports: it records
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not _runs_the_whole_suite(config):
        if reporter:
            reporter.write_line(
                "--record-proofs: not recorded, because this run selected only "
                "some tests; run the whole suite (for example `make test`)"
            )
        return
    here = configurations.current()
    recorder = config.pluginmanager.get_plugin("guide-proof-recorder")
    capture_recorder = config.pluginmanager.get_plugin("guide-capture-recorder")
    if capture_recorder.clashes:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(
                "--record-proofs: not recorded, because two tests recorded one "
                f"capture: {'; '.join(capture_recorder.clashes)}. Give each its own "
                "name in record_capture(name, text)."
            )
        return
    path = configurations.write_record(here, recorder.outcomes, database_versions())
    captured = capture_recorder.captures
    configurations.write_captures(
        here,
        {
            name: {"test": test, "text": text}
            for name, (test, text) in captured.items()
            if recorder.outcomes.get(test) == "passed"
        },
    )
    if reporter:
        reporter.write_line(f"proofs recorded for {here.label}: {path}")
