"""Page outputs, snapshot style: ``page_outputs`` compares a run with its record, or
records it under ``--record-outputs`` (``make record``).

Under pytest-xdist each worker's recordings travel in its test reports to the
controller, which writes ``proofs/outputs/<configuration>.json`` at the end: the
entries it recorded replace theirs, and entries no page shows any more are dropped.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import pytest

from guide_runtime import configurations, outputs
from guide_runtime.outputs import Entry, Request

RECORDED = "guide-page-output"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-outputs",
        action="store_true",
        help="write what each page output test observed to "
        "proofs/outputs/<configuration>.json instead of comparing with it",
    )
    parser.addoption(
        "--only-stale",
        action="store_true",
        help="with --record-outputs: run only the page outputs whose record is "
        "missing or was made from other code (what make serve re-records)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("--only-stale"):
        return
    stale = outputs.problems(configurations.current(), config.rootpath)
    fresh = [
        item
        for item in items
        if getattr(item, "callspec", None)
        and item.callspec.params.get("key")
        and item.callspec.params["key"] not in stale
    ]
    if fresh:
        config.hook.pytest_deselected(items=fresh)
        items[:] = [item for item in items if item not in fresh]


class _OutputRecorder:
    def __init__(self) -> None:
        self.recorded: dict[str, Entry] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == RECORDED and report.passed:
                key, entry = value
                self.recorded[key] = Entry(entry["output"], entry["sources"])


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--record-outputs"):
        config.pluginmanager.register(_OutputRecorder(), "guide-output-recorder")


#: A duration an output reports ("did not run for 502 ms") differs on every run.
DURATION = re.compile(r"\b\d+(\.\d+)? ?(ms|s|µs)\b")


def _without(output: Any, fields: tuple[str, ...]) -> Any:
    """What is compared of an output: not the fields that vary, and durations as
    ``<n> ms``."""
    if fields and isinstance(output, dict):
        output = {name: value for name, value in output.items() if name not in fields}
    return json.loads(DURATION.sub(r"<n> \2", json.dumps(output)))


def _shown(output: Any) -> list[str]:
    return json.dumps(output, indent=1, sort_keys=True).splitlines()


class PageOutputs:
    """Compare a page output with its record, or record it."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.node = request.node
        self.recording = request.config.getoption("--record-outputs")
        self.configuration = configurations.current()
        #: The records and the snippets are the run's project: its rootdir.
        self.root = request.config.rootpath

    def check(
        self, request: Request, output: Any, varies: tuple[str, ...] = ()
    ) -> None:
        """Record ``output``, or compare it with the record, leaving out the fields
        in ``varies`` (which change from run to run)."""
        entry = Entry(output, outputs.sources(request, self.root))
        if self.recording:
            value = {"output": entry.output, "sources": entry.sources}
            self.node.user_properties.append((RECORDED, (request.key, value)))
            return
        here = self.configuration.label
        recorded = outputs.load_outputs(self.configuration, self.root).get(request.key)
        if recorded is None:
            pytest.fail(
                f"{request.key}: no output is recorded on {here}. Record it: "
                f"{outputs.RECORD_COMMAND} (or `make record-all`).",
                pytrace=False,
            )
        if _without(recorded.output, varies) != _without(output, varies):
            diff = difflib.unified_diff(
                _shown(_without(recorded.output, varies)),
                _shown(_without(output, varies)),
                "recorded",
                "now",
                lineterm="",
            )
            pytest.fail(
                f"{request.key}: the page shows another output than it does now on "
                f"{here}. If the change is intended, re-record: "
                f"{outputs.RECORD_COMMAND} (or `make record-all`).\n" + "\n".join(diff),
                pytrace=False,
            )


@pytest.fixture
def page_outputs(request: pytest.FixtureRequest) -> PageOutputs:
    return PageOutputs(request)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recorder = session.config.pluginmanager.get_plugin("guide-output-recorder")
    if recorder is None or hasattr(session.config, "workerinput"):
        return  # not recording, or an xdist worker: the controller writes
    root = session.config.rootpath
    keep = set(outputs.requests_by_key(root))
    here = configurations.current()
    path = outputs.write_outputs(here, recorder.recorded, keep, root)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"page outputs recorded for {here.label}: {len(recorder.recorded)} "
            f"in {path}"
        )
