"""The toolkit in pytest: guard every session of a test run, budget statements.

Installed with the package as a ``pytest11`` entry point, so a service's suite
gets it without code changes. It does nothing until asked:

- ``--implicit-io=off|track|enforce`` (ini ``implicit_io``, default ``off``):
  ``enforce`` fails the test that caused an implicit load, ``track`` lets it pass
  and prints a summary at the end of the run;
- ``--implicit-io-allow=PATH`` (ini ``implicit_io_allow``): the allow-list file;
- ``@pytest.mark.max_statements(N)`` and the ``statement_budget`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from implicit_io.allow_list import AllowListError, load_allow_list
from implicit_io.guard import (
    ImplicitIOError,
    ImplicitIOGuard,
    ImplicitLoad,
    Mode,
    parse_mode,
)
from implicit_io.statement_budgets import StatementBudget, max_statements

_GUARD_KEY = pytest.StashKey[ImplicitIOGuard]()
_LOADS_KEY = pytest.StashKey[list[ImplicitLoad]]()


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
    parser.addini("implicit_io", "guard mode: off, track or enforce", default="off")
    parser.addini("implicit_io_allow", "path of the allow-list file", default="")


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
    allow_path = config.getoption("implicit_io_allow") or config.getini(
        "implicit_io_allow"
    )
    try:  # checked in every mode, so a bad entry fails before anyone enables one
        allow = load_allow_list(_from_rootdir(config, allow_path)) if allow_path else []
    except AllowListError as error:
        raise pytest.UsageError(f"implicit-io allow-list: {error}") from None
    if mode is Mode.OFF:
        return
    loads: list[ImplicitLoad] = []
    guard = ImplicitIOGuard(mode, allow=allow, on_load=loads.append)
    guard.install_on_every_session()
    config.stash[_GUARD_KEY] = guard
    config.stash[_LOADS_KEY] = loads


def _from_rootdir(config: pytest.Config, path: str) -> str:
    """An ini path is relative to the rootdir; a command-line one to the cwd."""
    if config.getoption("implicit_io_allow"):
        return path
    return str(config.rootpath / path)


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
    try:
        yield
    except ImplicitIOError:
        loads.clear()
        raise  # the guard's own error names the load already
    except BaseException as error:
        if guard.mode is Mode.ENFORCE and loads:
            raise _failure(item, phase, loads) from error
        raise
    else:
        if guard.mode is Mode.ENFORCE and loads:
            raise _failure(item, phase, loads)
    finally:
        loads.clear()


def _failure(item: pytest.Item, phase: str, loads: list[ImplicitLoad]) -> Exception:
    lines = "\n".join(f"  {load}" for load in loads)
    message = f"implicit I/O during {phase} of {item.nodeid}:\n{lines}"
    return pytest.fail.Exception(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _failing_on_loads(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with _failing_on_loads(item, "teardown"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    marker = item.get_closest_marker("max_statements")
    with _failing_on_loads(item, "call"):
        if marker is None:
            return (yield)
        with max_statements(None, _budget_of(item, marker)):
            return (yield)


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
    if not guard.counts and not guard.allowed_counts:
        terminalreporter.write_line("no implicit loads")
    for title, counts in (
        ("implicit load(s), most frequent first", guard.counts),
        ("allow-listed load(s) (IO401)", guard.allowed_counts),
    ):
        if counts:
            terminalreporter.write_line(f"{counts.total()} {title}:")
        for (rule, attribute), count in counts.most_common():
            terminalreporter.write_line(f"{count:6d}  {rule}  {attribute}")
