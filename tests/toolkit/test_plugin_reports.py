"""The plugin under pytest-xdist and across CI shards: reports and baselines.

Real pytest runs of the sample service. Under pytest-xdist (``-n 2``, ``-n 1``) each
worker is a process of its own, which guards its tests, and the controller's
summary and report count every worker's loads. The controller runs in this
process, as tests/toolkit/test_pytest_plugin.py runs the plugin: starting another
Python costs more than the run. One run's controller is a process of its own too,
as CI starts it (``run_as_ci``). A run without xdist (a shard, a usage error, a
single test, a step where xdist changes nothing) runs in this process,
``-p no:xdist``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guide_runtime.configurations import ROOT
from implicit_io import report as report_module
from implicit_io.report import Baseline, Report
from tests.plugins import INNER_RUN_PLUGINS_OFF

SAMPLE = ROOT / "tests" / "toolkit" / "sample_service"
PLUGIN = ["-p", "implicit_io.pytest_plugin"]
PLUGIN += INNER_RUN_PLUGINS_OFF
# Nothing the runs need: a cache to write, anyio (the service tests on asyncio).
PLUGIN += ["-p", "no:cacheprovider", "-p", "no:anyio"]
LAZY_TEST = "test_orders.py::test_invoice_lines"

MORE_LOADS = """
from orders import Customer
from sqlalchemy import select


def test_customer_orders(sync_session):
    customers = sync_session.scalars(select(Customer).order_by(Customer.id))
    assert [len(customer.orders) for customer in customers] == [2, 1]
"""

FIXED_EXPORT = '''

def invoice_lines(session: Session) -> list[str]:
    """The nightly invoice export, its customers loaded with the orders."""
    query = select(Order).options(selectinload(Order.customer)).order_by(Order.id)
    return [f"{order.customer.name}: {order.total}" for order in session.scalars(query)]
'''


@pytest.fixture
def service(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    for path in SAMPLE.iterdir():
        if path.is_file():
            shutil.copy(path, pytester.path / path.name)
    # The subprocesses import the plugin from this checkout.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(pytester.path)]))
    return pytester


#: In this process the plugin is imported already, which pytest warns about.
QUIET = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run under pytest-xdist: its controller here, its workers processes."""
    return pytester.runpytest_inprocess(*PLUGIN, *QUIET, "-rf", *args)


def run_as_ci(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run under pytest-xdist whose controller is a process of its own too."""
    return pytester.runpytest_subprocess(*PLUGIN, "-rf", *args)


def run_here(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run without xdist, in this process."""
    return pytester.runpytest_inprocess(*PLUGIN, "-p", "no:xdist", *QUIET, "-rf", *args)


def report_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``implicit-io-report ARGS`` in ``cwd``: the command's own main(), in this
    process (as a command of its own: report_command)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        status = report_module.main(list(args))
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def report_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m implicit_io.report ARGS``, a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", report_module.__name__, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# --- pytest-xdist ----------------------------------------------------------------


def test_enforce_under_xdist_fails_the_test_and_counts_its_load(service) -> None:
    # One worker: that the controller adds up several workers' loads is the next
    # test's; here the test fails in a worker and the controller counts its load.
    result = run_as_ci(service, "-n", "1", "--implicit-io=enforce")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= implicit I/O (enforce) =*",
            "1 implicit load(s), most frequent first:",
            "     1  IO102  Order.customer  first at orders.py:53",
            f"FAILED {LAZY_TEST} - implicit_io.guard.ImplicitIOError*",
        ]
    )


def test_track_under_xdist_counts_and_reports_every_workers_loads(service) -> None:
    service.makepyfile(test_more=MORE_LOADS)
    result = run(
        service, "-n", "2", "--implicit-io=track", "--implicit-io-report=r.json"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= implicit I/O (track) =*",
            "4 implicit load(s), most frequent first:",
            "     2  IO102  Customer.orders  first at test_more.py:7",
            "     2  IO102  Order.customer  first at orders.py:53",
        ]
    )
    data = json.loads((service.path / "r.json").read_text())
    assert data["total"] == 4
    assert data["loads"] == [
        {
            "rule": "IO102",
            "attribute": "Customer.orders",
            "kind": "implicit lazy load of a relationship",
            "count": 2,
            "first": "test_more.py:7",
            "first_test": "test_more.py::test_customer_orders",
            "tests": ["test_more.py::test_customer_orders"],
        },
        {
            "rule": "IO102",
            "attribute": "Order.customer",
            "kind": "implicit lazy load of a relationship",
            "count": 2,
            "first": "orders.py:53",
            "first_test": LAZY_TEST,
            "tests": [LAZY_TEST],
        },
    ]
    result.stdout.fnmatch_lines(["implicit-io report written to r.json"])


def test_a_worker_stopped_by_pytest_exit_is_counted_once(service) -> None:
    # pytest.exit (or Ctrl-C) in a worker: xdist reports that worker down twice,
    # once finished and once as an error; its loads were added both times.
    stops = "\n\ndef test_zz_stops():\n    import pytest\n\n    pytest.exit('stop')\n"
    service.makepyfile(test_more=MORE_LOADS + stops)
    result = run(
        service, "-n", "1", "--implicit-io=track", "--implicit-io-report=r.json"
    )
    result.stdout.fnmatch_lines(
        [
            "*= implicit I/O (track) =*",
            "2 implicit load(s), most frequent first:",
            "     2  IO102  Customer.orders  first at test_more.py:7",
        ]
    )
    assert json.loads((service.path / "r.json").read_text())["total"] == 2


RERUNS_ONCE = """
import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # As pytest-rerunfailures (--reruns 1) runs a test: each attempt starts with
    # logstart; a failed attempt is logged as "rerun", and the test runs again.
    for last in (False, True):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        failed = [report for report in reports if report.failed]
        if last or not failed:
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            break
        failed[0].outcome = "rerun"
        item.ihook.pytest_runtest_logreport(report=failed[0])
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", "RERUN"
"""

FLAKY = """
from orders import Customer
from sqlalchemy import select

attempts = []


def test_flaky_orders(sync_session):
    customers = sync_session.scalars(select(Customer).order_by(Customer.id))
    assert [len(customer.orders) for customer in customers] == [2, 1]
    attempts.append(1)
    assert len(attempts) == 2
"""


def test_a_rerun_test_counts_the_loads_of_its_last_attempt(service) -> None:
    service.path.joinpath("conftest.py").write_text(
        service.path.joinpath("conftest.py").read_text() + RERUNS_ONCE
    )
    service.makepyfile(test_flaky=FLAKY)
    result = run_here(
        service, "--implicit-io=track", "--implicit-io-report=r.json", "test_flaky.py"
    )
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    result.stdout.fnmatch_lines(
        [
            "*= implicit I/O (track) =*",
            "2 implicit load(s), most frequent first:",
            "     2  IO102  Customer.orders  first at test_flaky.py:9",
        ]
    )
    assert json.loads((service.path / "r.json").read_text())["total"] == 2


def test_a_test_repeated_by_pytest_repeat_counts_each_repetition(service) -> None:
    # pytest-repeat's --count N makes each test N tests ("[1-2]", "[2-2]"): every
    # repetition's loads are counted and named, and a baseline written from such a
    # run holds the same entries as from one run (it keys on rule and attribute).
    report = ["--implicit-io-report=r.json", *BASELINE_WRITE]
    repeated = run_here(service, "--count=2", "--implicit-io=track", *report)
    repeated.assert_outcomes(passed=6)
    [load] = json.loads((service.path / "r.json").read_text())["loads"]
    assert (load["count"], load["tests"]) == (
        4,
        [f"{LAZY_TEST}[1-2]", f"{LAZY_TEST}[2-2]"],
    )
    assert Baseline.read(service.path / "baseline.json").counts == {
        ("IO102", "Order.customer"): 4
    }
    once = run_here(
        service, "--implicit-io=enforce", "--implicit-io-baseline=baseline.json"
    )
    once.assert_outcomes(passed=3)


def test_a_test_that_changes_directory_does_not_rename_later_loads(service) -> None:
    # alchemical's alembic tests chdir into their folder and never come back: the
    # loads after them were named from there ("test_x.py:7", elsewhere
    # "/abs/path/test_x.py:7"), so a serial report differed from an xdist one,
    # whose worker had not run them. Named from where pytest started, they agree.
    service.mkdir("elsewhere")
    service.makepyfile(
        test_aa_chdir="import os\n\ndef test_moves_away():\n    os.chdir('elsewhere')",
        test_more=MORE_LOADS,
    )
    serial = run_here(service, "--implicit-io=track", "--implicit-io-report=s.json")
    serial.assert_outcomes(passed=5)
    report = json.loads((service.path / "s.json").read_text())
    assert [load["first"] for load in report["loads"]] == [
        "test_more.py:7",
        "orders.py:53",
    ]


def test_a_run_started_in_a_subfolder_names_the_same_places(
    service, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CI step may start pytest below the service's root (cd tests && pytest ..):
    # its loads are named from the rootdir, as pytest names the tests, so its report
    # merges with the other shards' ("test_more.py:7" from the root, else
    # "../test_more.py:7").
    service.makepyfile(test_more=MORE_LOADS)
    top = run_here(service, "--implicit-io=track", "--implicit-io-report=top.json")
    top.assert_outcomes(passed=4)
    (service.path / "ci").mkdir()
    monkeypatch.chdir(service.path / "ci")
    below = run_here(
        service, "--implicit-io=track", "--implicit-io-report=r.json", "../"
    )
    below.assert_outcomes(passed=4)
    places = [
        [load["first"] for load in json.loads(path.read_text())["loads"]]
        for path in (service.path / "top.json", service.path / "ci" / "r.json")
    ]
    assert places == [["test_more.py:7", "orders.py:53"]] * 2


# --- CI shards ---------------------------------------------------------------------


def test_two_shards_merge_into_the_report_of_the_whole_suite(service) -> None:
    service.makepyfile(test_more=MORE_LOADS)
    # The whole suite in one process: that the report of an xdist run is the
    # same is the test above.
    whole = run_here(service, "--implicit-io=track", "--implicit-io-report=all.json")
    whole.assert_outcomes(passed=4)
    # Two CI machines, each running half of the suite (one process each).
    for shard, selection in (("1", "test_orders.py"), ("2", "test_more.py")):
        part = run_here(
            service,
            selection,
            "--implicit-io=track",
            f"--implicit-io-report=shard-{shard}.json",
        )
        part.assert_outcomes(passed=3 if shard == "1" else 1)
    merged = report_cli(
        "merge", "shard-1.json", "shard-2.json", "-o", "merged.json", cwd=service.path
    )
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == "merged.json: 4 load(s) from 2 report(s)\n"
    assert Report.read(service.path / "merged.json").to_dict() == (
        Report.read(service.path / "all.json").to_dict()
    )
    shown = report_cli("show", "shard-1.json", "shard-2.json", cwd=service.path)
    assert shown.stdout.splitlines() == [
        "4 implicit load(s), most frequent first:",
        "     2  IO102  Customer.orders  first at test_more.py:7",
        "     2  IO102  Order.customer  first at orders.py:53",
    ]


def test_a_report_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"loads": []}')
    done = report_command("show", "bad.json", "missing.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "implicit-io-report: bad.json: not an implicit-io report (format 1)\n"
    )


def test_the_report_command_starts_without_importing_sqlalchemy() -> None:
    # It reads and writes JSON: a CI step that merges shards should not pay for
    # importing SQLAlchemy (about a quarter of a second here).
    code = f"import sys, {report_module.__name__}; print('sqlalchemy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.stdout == "False\n"


# --- The baseline ratchets ----------------------------------------------------------


def test_the_baseline_passes_old_loads_fails_new_ones_and_shrinks(service) -> None:
    # Phase 2: record today's loads.
    written = run(
        service,
        "-n",
        "2",
        "--implicit-io=track",
        "--implicit-io-baseline=baseline.json",
        "--implicit-io-baseline-write",
    )
    written.assert_outcomes(passed=3)
    written.stdout.fnmatch_lines(["implicit-io baseline written to baseline.json"])
    baseline = Baseline.read(service.path / "baseline.json")
    assert baseline.counts == {("IO102", "Order.customer"): 2}

    # Enforce: the baselined load is reported and passes; a new one fails.
    service.makepyfile(test_more=MORE_LOADS)
    enforced = run(  # one worker: the controller still adds up what it sends
        service,
        "-n",
        "1",
        "--implicit-io=enforce",
        "--implicit-io-baseline=baseline.json",
    )
    enforced.assert_outcomes(passed=3, failed=1)
    enforced.stdout.fnmatch_lines(
        [
            "     2  IO102  Order.customer  first at orders.py:53  (baseline)",
            "     1  IO102  Customer.orders  first at test_more.py:7  NEW",
            "baseline: 1 entr(ies), 1 still seen, 1 new",
            "FAILED test_more.py::test_customer_orders - *ImplicitIOError*",
        ]
    )
    (service.path / "test_more.py").unlink()

    # The baselined load, fixed: reported as removable, and pruned away.
    orders = service.path / "orders.py"
    source = orders.read_text()
    orders.write_text(source[: source.index("\n\ndef invoice_lines")] + FIXED_EXPORT)
    # In one process: what a run no longer saw is counted where the baseline was
    # written, in the controller, as above.
    fixed = run_here(
        service,
        "--implicit-io=enforce",
        "--implicit-io-baseline=baseline.json",
        "--implicit-io-report=report.json",
    )
    fixed.assert_outcomes(passed=3)
    fixed.stdout.fnmatch_lines(
        [
            "no implicit loads",
            "baseline: 1 entr(ies), 0 still seen, 0 new",
            "1 baseline entr(ies) no longer seen: removable (implicit-io-report "
            "prune, after a run of the whole suite):",
            "        IO102  Order.customer",
        ]
    )
    pruned = report_cli("prune", "baseline.json", "report.json", cwd=service.path)
    assert pruned.stdout == "baseline.json: 1 entr(ies) removed, 0 left\n"
    assert Baseline.read(service.path / "baseline.json").counts == {}


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("-k", "invoice"), "4 test(s) deselected"),
        (("-x",), "stopping after 1 failures"),
    ],
)
def test_a_baseline_written_by_a_partial_run_keeps_what_it_did_not_see(
    service, args, why
) -> None:
    service.makepyfile(test_more=MORE_LOADS)
    write = ["--implicit-io=track", "--implicit-io-baseline=b.json"]
    write.append("--implicit-io-baseline-write")
    run_here(service, *write).assert_outcomes(passed=4)
    # -x: this test fails first, and nothing after it runs.
    service.makepyfile(test_aa_fails="def test_fails():\n    assert False")
    partial = run_here(service, *write, *args)
    partial.stdout.fnmatch_lines(
        [
            "implicit-io baseline written to b.json",
            f"implicit-io baseline: a partial run ({why}): kept the * existing "
            "entr(ies) it did not see",
        ]
    )
    baseline = Baseline.read(service.path / "b.json")
    assert baseline.keys == {
        ("IO102", "Customer.orders"),
        ("IO102", "Order.customer"),
    }


def test_a_file_that_fails_to_collect_makes_the_run_partial(service) -> None:
    # --continue-on-collection-errors runs the rest: that file's loads are unseen.
    service.makepyfile(test_more=MORE_LOADS)
    write = ["--implicit-io=track", "--implicit-io-baseline=b.json"]
    write.append("--implicit-io-baseline-write")
    run_here(service, *write).assert_outcomes(passed=4)
    service.makepyfile(test_more="import a_module_it_lost\n" + MORE_LOADS)
    broken = run_here(service, *write, "--continue-on-collection-errors")
    broken.assert_outcomes(passed=3, errors=1)
    broken.stdout.fnmatch_lines(
        [
            "implicit-io baseline: a partial run (1 file(s) failed to collect): "
            "kept the 1 existing entr(ies) it did not see",
        ]
    )
    assert Baseline.read(service.path / "b.json").keys == {
        ("IO102", "Customer.orders"),
        ("IO102", "Order.customer"),
    }


def test_the_ini_key_names_the_baseline(service) -> None:
    ini = service.path / "pytest.ini"
    ini.write_text(ini.read_text() + "implicit_io_baseline = debt.json\n")
    run_here(service, "--implicit-io=track", "--implicit-io-baseline-write")
    assert Baseline.read(service.path / "debt.json").counts == {
        ("IO102", "Order.customer"): 2
    }
    run_here(service, "--implicit-io=enforce").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--implicit-io-baseline-write"],
            "*--implicit-io-baseline-write: say where, with --implicit-io-baseline=*",
        ),
        (
            ["--implicit-io-baseline=nowhere.json"],
            "*implicit-io baseline: nowhere.json: cannot read it*",
        ),
    ],
)
def test_a_bad_baseline_is_a_usage_error(service, args, message) -> None:
    result = run_here(service, "--implicit-io=track", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# --- DetachedInstanceError ----------------------------------------------------------


def test_a_detached_read_is_explained_in_the_failure(service) -> None:
    service.makepyfile(
        test_detached="""
        from orders import Order
        from sqlalchemy import select

        def test_export_after_expunge(sync_session):
            order = sync_session.scalar(select(Order))
            sync_session.expunge(order)
            assert order.customer.name == "ada"
        """
    )
    result = run_here(service, "--implicit-io=track", "test_detached.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *sqlalchemy.orm.exc.DetachedInstanceError: *",
            "E *implicit-io: Order.customer was read after the object was detached "
            "from its session by expunge(): nothing can load it any more.*",
        ]
    )


def _ends_its_process(service) -> None:
    exits = "\n\ndef test_zz_exits():\n    import os\n\n    os._exit(0)\n"
    service.makepyfile(test_more=MORE_LOADS + exits)


def test_a_process_ended_by_os_exit_writes_no_report(service) -> None:
    # os._exit ends the process at once: no session end, so no summary and no report.
    _ends_its_process(service)
    args = ["-p", "no:xdist", "--implicit-io=track", "--implicit-io-report=r.json"]
    result = service.runpytest_subprocess(*PLUGIN, *args)
    assert "implicit I/O" not in result.stdout.str()
    assert not (service.path / "r.json").exists()


def test_a_worker_that_dies_makes_the_run_partial(service) -> None:
    # xdist replaces a worker that died; its report, and the loads of the tests it
    # ran, never reach the controller. A baseline written from such a run keeps the
    # entries it did not see, as after any partial run, instead of dropping them.
    service.makepyfile(test_more=MORE_LOADS)
    # The baseline before: written in one process (an xdist run writes the same).
    full = run_here(service, "--implicit-io=track", *BASELINE_WRITE)
    full.assert_outcomes(passed=4)
    assert len(Baseline.read(service.path / "baseline.json").counts) == 2

    _ends_its_process(service)  # test_more.py now ends its worker's process
    died = run(service, "-n", "1", "--implicit-io=track", *BASELINE_WRITE)
    died.assert_outcomes(passed=4, failed=1)
    died.stdout.fnmatch_lines(
        [
            "implicit-io: worker gw0 died before sending its report; the loads of "
            "the tests it ran are not counted",
            "implicit-io baseline: a partial run (*): kept the 1 existing entr(ies) "
            "it did not see",
        ]
    )
    assert len(Baseline.read(service.path / "baseline.json").counts) == 2


BASELINE_WRITE = [
    "--implicit-io-baseline=baseline.json",
    "--implicit-io-baseline-write",
]
