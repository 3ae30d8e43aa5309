"""The pytest plugin, run by real pytest on a sample service's unchanged suite."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from implicit_io import pytest_plugin
from implicit_io.rule_links import rule_url
from tests.plugins import INNER_RUN_PLUGINS_OFF

SAMPLE = Path(__file__).parent / "sample_service"
LAZY_TEST = "test_orders.py::test_invoice_lines"
#: The plugin under test, from the source tree, and none of the installed plugins
#: this suite turns off.
PLUGIN = ["-p", pytest_plugin.__name__]
PLUGIN += INNER_RUN_PLUGINS_OFF


@pytest.fixture
def service(pytester: pytest.Pytester) -> pytest.Pytester:
    for path in SAMPLE.iterdir():
        if path.is_file():
            shutil.copy(path, pytester.path / path.name)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # In process: the plugin is imported already, which pytest warns about.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    return pytester.runpytest(*PLUGIN, *quiet, *args)


def test_off_by_default_the_suite_is_untouched(service: pytest.Pytester) -> None:
    result = run(service)
    result.assert_outcomes(passed=3)
    assert "implicit I/O" not in result.stdout.str()


def test_enforce_fails_exactly_the_test_that_lazy_loads(
    service: pytest.Pytester,
) -> None:
    result = run(service, "--implicit-io=enforce", "-rf")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * implicit_io.guard.ImplicitIOError: IO102 implicit lazy load of a "
            "relationship: Order.customer at orders.py:53 in *. "
            f"See {rule_url('IO102')}",
            f"FAILED {LAZY_TEST} - *",
        ]
    )
    # The failure ends at the line that loaded: no frame of SQLAlchemy's loader or
    # of the guard after it (pytest names each frame it shows by its file).
    result.stdout.fnmatch_lines(
        ["orders.py:53: in invoice_lines", "E *", "orders.py:53: *"]
    )
    shown = result.stdout.str()
    assert "sqlalchemy/orm/" not in shown and "implicit_io/guard.py" not in shown, (
        "the failure shows the loader's frames: did pytest change how it builds a "
        "Traceback? (implicit_io/pytest_plugin.py, pytest_runtest_makereport)"
    )


def test_full_trace_shows_the_loaders_frames_too(service: pytest.Pytester) -> None:
    result = run(service, "--implicit-io=enforce", "--full-trace")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*/sqlalchemy/orm/strategies.py:*", "*guard.py:*"])


def test_track_passes_and_summarizes_most_frequent_first(
    service: pytest.Pytester,
) -> None:
    service.makepyfile(
        test_more="""
        from orders import Customer
        from sqlalchemy import select

        from sqlalchemy.orm import Session

        def test_customer_orders(sync_session):
            customers = sync_session.scalars(select(Customer).order_by(Customer.id))
            assert [len(c.orders) for c in customers] == [2, 1]
            with Session(sync_session.get_bind()) as other:
                assert len(other.get(Customer, 1).orders) == 2
        """
    )
    result = run(service, "--implicit-io=track")
    result.assert_outcomes(passed=4)
    # Order.customer: 2, not 3; ada's second order finds her in the identity map.
    result.stdout.fnmatch_lines(
        [
            "*= implicit I/O (track) =*",
            "5 implicit load(s), most frequent first:",
            "     3  IO102  Customer.orders  first at test_more.py:8",
            "     2  IO102  Order.customer  first at orders.py:53",
        ]
    )


OWN_GUARD_TEST = """
import json
from pathlib import Path

from orders import Order
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from implicit_io.guard import ImplicitIOError, ImplicitIOGuard


def test_a_service_that_guards_its_own_factory(sync_session):
    factory = sessionmaker(sync_session.get_bind(), expire_on_commit=False)
    own = ImplicitIOGuard("{mode}")
    own.install(factory)
    with factory() as session:
        order = session.scalars(select(Order).order_by(Order.id)).first()
        try:
            order.customer.name
            outcome = "loaded"
        except ImplicitIOError as error:
            outcome = str(error)
    report = {{"outcome": outcome, "counted": sum(own.counts.values())}}
    Path("own_guard.json").write_text(json.dumps(report))
"""


@pytest.mark.parametrize("own", ["track", "enforce"], ids=lambda m: f"factory={m}")
@pytest.mark.parametrize("plugin", ["track", "enforce"], ids=lambda m: f"plugin={m}")
def test_a_guard_on_the_service_factory_reports_only_behind_a_tracking_plugin(
    service: pytest.Pytester, plugin: str, own: str
) -> None:
    service.makepyfile(test_own_guard=OWN_GUARD_TEST.format(mode=own))
    result = run(service, f"--implicit-io={plugin}", "test_own_guard.py")
    report = json.loads((service.path / "own_guard.json").read_text())
    # The plugin's guard watches every Session, and runs first.
    if plugin == "enforce":
        # It refuses the load: the service's guard never sees it, and the
        # plugin fails the test although the service caught the error.
        result.assert_outcomes(failed=1)
        assert report["counted"] == 0
        assert report["outcome"].startswith("IO102 implicit lazy load")
    else:
        # It only counts: the service's guard then reports the load as well,
        # and refuses it in its own enforce mode.
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["1 implicit load(s), most frequent first:"])
        assert report["counted"] == 1
        refused = report["outcome"].startswith("IO102 implicit lazy load")
        assert refused == (own == "enforce")


def test_the_ini_key_sets_the_mode(service: pytest.Pytester) -> None:
    ini = (service.path / "pytest.ini").read_text()
    (service.path / "pytest.ini").write_text(ini + "implicit_io = enforce\n")
    run(service).assert_outcomes(passed=2, failed=1)
    # The command line wins over the ini file.
    run(service, "--implicit-io=off").assert_outcomes(passed=3)


def test_a_swallowed_guard_error_still_fails_the_test(pytester: pytest.Pytester):
    for name in ("orders.py", "conftest.py", "pytest.ini"):
        shutil.copy(SAMPLE / name, pytester.path / name)
    pytester.makepyfile(
        test_handler="""
        import contextlib
        from orders import invoice_lines

        def test_error_page(sync_session):
            # A web framework's handler turns every error into a 500 page.
            with contextlib.suppress(Exception):
                invoice_lines(sync_session)
        """
    )
    result = run(pytester, "--implicit-io=enforce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["implicit I/O during call of test_handler.py::test_error_page:", "*IO102*"]
    )


def test_the_allow_list_lets_an_entry_through(service: pytest.Pytester) -> None:
    (service.path / "allow.toml").write_text(
        "[[allow]]\n"
        'rule = "IO102"\n'
        'attribute = "Order.customer"\n'
        'rationale = "nightly export runs in a sync worker; ORD-7 removes it"\n'
        'owner = "team-orders"\n'
    )
    result = run(service, "--implicit-io=enforce", "--implicit-io-allow=allow.toml")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["2 allow-listed load(s) (IO401):", "     2  IO102  Order.customer"]
    )


@pytest.mark.parametrize("mode", ["off", "track"])
def test_a_bad_allow_list_is_a_usage_error(service: pytest.Pytester, mode) -> None:
    (service.path / "allow.toml").write_text('[[allow]]\nrule = "IO102"\n')
    result = run(service, f"--implicit-io={mode}", "--implicit-io-allow=allow.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines(
        [re.escape("ERROR: implicit-io allow-list: allow.toml: [[allow]] entry 1: ")]
    )
    assert "'attribute' is missing or empty" in result.stderr.str()


def test_an_unknown_mode_in_the_ini_file_is_a_usage_error(
    service: pytest.Pytester,
) -> None:
    ini = (service.path / "pytest.ini").read_text()
    (service.path / "pytest.ini").write_text(ini + "implicit_io = strict\n")
    result = run(service)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown implicit-I/O guard mode 'strict'*"])


BUDGETED = """
import pytest
from sqlalchemy import select
from orders import Customer

@pytest.mark.max_statements(1)
async def test_within_budget(session):
    await session.scalars(select(Customer))

@pytest.mark.max_statements(1)
async def test_over_budget(session):
    await session.scalars(select(Customer))
    await session.scalars(select(Customer))

async def test_fixture(session, statement_budget):
    with statement_budget.exactly(1) as log:
        await session.scalars(select(Customer))
    assert log.count == 1

@pytest.mark.max_statements("two")
def test_bad_marker():
    pass
"""


def test_statement_budget_marker_and_fixture(pytester: pytest.Pytester) -> None:
    for name in ("orders.py", "conftest.py", "pytest.ini"):
        shutil.copy(SAMPLE / name, pytester.path / name)
    pytester.makepyfile(test_budgets=BUDGETED)
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*IO402 expected at most 1 statement(s), 2 sent:*",
            "*test_bad_marker: write @pytest.mark.max_statements(N) with a count*",
        ]
    )


def test_help_lists_the_options_and_ini_keys(pytester: pytest.Pytester) -> None:
    assert pytest_plugin.pytest_addoption.__module__ == "implicit_io.pytest_plugin"
    shutil.copy(SAMPLE / "pytest.ini", pytester.path / "pytest.ini")
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(
        [
            "implicit ORM I/O (implicit_io):",
            "  --implicit-io={off,track,enforce}",
            "  --implicit-io-allow=PATH",
        ]
    )
    result.stdout.fnmatch_lines_random(
        ["  implicit_io (string):*", "  implicit_io_allow (string):*"]
    )


def test_the_fixture_is_offered_to_every_test(pytester: pytest.Pytester) -> None:
    shutil.copy(SAMPLE / "pytest.ini", pytester.path / "pytest.ini")
    result = run(pytester, "--fixtures")
    name = pytest_plugin.statement_budget.__name__
    result.stdout.fnmatch_lines([f"{name} -- *pytest_plugin.py:*", "    Budgets on*"])


def test_a_fixture_that_loads_implicitly_fails_its_test(pytester: pytest.Pytester):
    for name in ("orders.py", "conftest.py", "pytest.ini"):
        shutil.copy(SAMPLE / name, pytester.path / name)
    pytester.makepyfile(
        test_fixtures="""
        import pytest
        from orders import invoice_lines

        @pytest.fixture
        def export(sync_session):
            yield
            invoice_lines(sync_session)  # at teardown

        def test_with_export(export):
            pass
        """
    )
    result = run(pytester, "--implicit-io=enforce")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*IO102 implicit lazy load of a relationship*"])


@pytest.mark.parametrize("mode", ["off", "track", "enforce"])
def test_a_fixture_error_shows_no_frame_of_the_plugin(
    pytester: pytest.Pytester, mode: str
) -> None:
    # The plugin wraps every test's setup, call and teardown, in every mode: an
    # error in a fixture, without it a suite's own, must not point at the plugin.
    # Fixtures of a conftest.py: pytest cannot cut the traceback at the test's
    # file, and shows every frame not its own or pluggy's.
    shutil.copy(SAMPLE / "pytest.ini", pytester.path / "pytest.ini")
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup broke")

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown broke")
        """
    )
    pytester.makepyfile(
        test_fixture_errors="""
        def test_setup(broken_setup):
            pass

        def test_teardown(broken_teardown):
            pass
        """
    )
    result = run(pytester, f"--implicit-io={mode}")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*setup broke", "*teardown broke"])
    assert "pytest_plugin.py" not in result.stdout.str()
