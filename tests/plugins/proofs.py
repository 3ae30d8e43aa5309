"""Proof records: ``--record-proofs`` writes each test's outcome on this configuration
(proofs/<configuration>.json), and ``record_capture`` the output a test recorded for
a page (proofs/captures/<configuration>.json)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from guide_runtime import configurations
from guide_runtime.database import database_versions


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-proofs",
        action="store_true",
        help="after a whole-suite run, write proofs/<configuration>.json: each "
        "test's outcome on this configuration, read by the site build",
    )


def cited_id(nodeid: str) -> str:
    """A test's id as pages cite it: without the ``@group`` pytest-xdist appends to
    the tests of an ``xdist_group`` (an ``@`` inside a parameter id is kept)."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") and at > nodeid.rfind("::") else nodeid


class _ProofRecorder:
    """Each test's outcome in this run; written as the suite's proof record."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        #: Why each skipped test was skipped, as pytest reports it.
        self.skips: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "failed"
        elif report.when == "call" or report.failed or report.skipped:
            outcome = report.outcome
        else:
            return
        test = cited_id(report.nodeid)
        # The worst phase wins: a teardown error fails a test whose call passed.
        if self.outcomes.get(test) not in ("failed", "skipped"):
            self.outcomes[test] = outcome
        if outcome == "skipped" and isinstance(report.longrepr, tuple):
            self.skips[test] = report.longrepr[2].removeprefix("Skipped: ")


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
            nodeid = cited_id(report.nodeid)
            test, _ = self.captures.get(name, (nodeid, ""))
            if test != nodeid:
                self.clashes.append(f"{name!r} by {test} and {nodeid}")
            self.captures[name] = (nodeid, text)


def pytest_configure(config: pytest.Config) -> None:
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
        nodeid = cited_id(request.node.nodeid)
        test, _ = recorder.captures.get(name, (nodeid, ""))
        if test != nodeid:
            pytest.fail(f"capture {name!r} is already recorded by {test}")
        recorder.captures[name] = (nodeid, text)
        # The report carries it to the process that writes records (under xdist,
        # the controller, which runs no test itself).
        request.node.user_properties.append((CAPTURE_PROPERTY, (name, text)))

    return record


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_the_whole_suite(config: pytest.Config) -> bool:
    option = config.option
    narrowed = option.keyword or option.markexpr or getattr(option, "deselect", None)
    return not narrowed and config.args == config.getini("testpaths")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
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
    path = configurations.write_record(
        here, recorder.outcomes, database_versions(), skips=recorder.skips
    )
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
