"""Running a snippet function on a fresh database, and what it did there.

:func:`capture` runs ``module:function`` from ``snippets/`` with the database
arguments it names and records its SQL, result or exception, warnings and log
lines. The tests that record a page's output use it (tests/examples/
test_page_outputs.py), and so do the tests of single examples.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import inspect
import logging
import pprint
import re
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from implicit_io.statement_budgets import StatementLog, record_statements

from .database import (
    Seed,
    add_sample_data,
    checked_database_url,
    database_url,
    fresh_database,
    fresh_sync_database,
    session_factory_for,
)


def load_callable(target: str) -> Callable[..., Any]:
    """``"module:function"`` → the function in ``snippets.module``."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"{target!r} is not 'module:function' (for example 'eager_loading:run')"
        )
    module = importlib.import_module(f"snippets.{module_name}")
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise LookupError(
            f"snippets/{module_name}.py defines no {attribute!r}"
        ) from None


def release_failed_io(error: BaseException) -> None:
    """Free what a failed implicit load left behind in ``error``'s frames.

    A lazy load that fails under asyncio leaves the driver's un-awaited coroutine
    referenced from the traceback's frames; Python warns "coroutine ... was never
    awaited" only when that coroutine is freed. Clearing the frames frees it while
    the caller still holds the error. A failure the code swallowed, or one whose
    frames a wrapper keeps out of reach (pydantic's ValidationError), is left in
    a reference cycle: :func:`failed_loads_warn_here` collects those.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if error.__traceback__ is not None:
            traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__ or getattr(error, "orig", None)


@contextmanager
def failed_loads_warn_here() -> Iterator[None]:
    """Make the "never awaited" warnings of the block's failed loads fire in it.

    A failed load's coroutine, once unreachable, sits in a reference cycle until
    the garbage collector runs: then it warns, wherever the program is by then.
    Automatic collection is paused for the block, so everything the block creates
    stays in the youngest generation, and its end collects that generation: every
    cycle the block left is freed there, at a fraction of a full collection's
    cost in a large process (tests/infrastructure/test_harness.py proves it).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect(0)
        if was_enabled:
            gc.enable()


@contextmanager
def record_sent(
    engine: AsyncEngine | Engine,
) -> Iterator[tuple[StatementLog, list[str]]]:
    """``record_statements``, less any load asyncio refused: (log, refused SQL).

    2.0 hands a refused load's statement to ``before_cursor_execute`` and is
    refused at the driver's await; 2.1 is refused before that event. Neither
    reaches the database, so the refused statement moves from the log to the
    list (tests/test_counting_statements.py proves both lines).
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    refused: list[str] = []
    completed = 0
    with record_statements(engine) as log:

        def on_completed(*_: object) -> None:
            nonlocal completed
            completed += 1

        def on_error(context) -> None:
            if not isinstance(context.original_exception, MissingGreenlet):
                return
            refused.append(context.statement or "")
            if len(log.statements) > completed:  # recorded, never answered
                log.statements.pop()

        listeners = (("after_cursor_execute", on_completed), ("handle_error", on_error))
        for name, listener in listeners:
            event.listen(sync_engine, name, listener)
        try:
            yield log, refused
        finally:
            for name, listener in listeners:
                event.remove(sync_engine, name, listener)


@dataclass
class Capture:
    """What one run of a snippet did: its result or exception, its SQL, warnings."""

    statements: StatementLog
    result: Any = None
    error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)
    #: Log lines the run wrote (through the root logger), as "LEVEL logger: message".
    logged: list[str] = field(default_factory=list)
    #: False when the snippet took no database argument, so it had none to use.
    had_database: bool = True
    #: The SQL dialect that sent the statements ("sqlite", "postgresql").
    dialect: str = ""

    def __str__(self) -> str:
        """What the run did, as a page shows it: count, error, warnings, result."""
        count = self.statements.count
        lines = [f"{count} statement{'s' if count != 1 else ''} sent"]
        if self.error is not None:
            lines.append(f"Raised: {describe_error(self.error)}")
        lines += [f"Warned: {warning}" for warning in self.warnings]
        if self.error is None:
            lines.append(f"Returned: {self.result!r}")
        return "\n".join(lines)


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def collected_logs() -> Iterator[list[str]]:
    """Route what reaches the root logger into a list instead of its handlers.

    Snippets that log (the guard's track mode) then show their lines on the page,
    and a build or test run prints nothing stray.
    """
    root = logging.getLogger()
    collector, saved = _LogCollector(), root.handlers[:]
    root.handlers[:] = [collector]
    try:
        yield collector.lines
    finally:
        root.handlers[:] = saved


@contextmanager
def _capturing(engine: AsyncEngine | Engine) -> Iterator[Capture]:
    """What the block does: its SQL, warnings, log lines and any exception."""
    with (
        record_sent(engine) as (log, _),
        warnings.catch_warnings(record=True) as caught,
        failed_loads_warn_here(),
        collected_logs() as lines,
    ):
        warnings.simplefilter("always")
        captured = Capture(log)
        try:
            yield captured
        except Exception as error:  # the error is the output
            captured.error, captured.result = error, None
            release_failed_io(error)
    captured.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    captured.logged = lines


async def _capture(func: Callable[..., Any], seed: Seed, directory: str) -> Capture:
    parameters = inspect.signature(func).parameters
    # `file_engine`: the database is a file, so the engine pools real connections.
    # Always SQLite: the examples that take it block on it with pysqlite too.
    file_url = f"sqlite+aiosqlite:///{directory}/guide.db"
    url = file_url if "file_engine" in parameters else None
    async with fresh_database(seed, url) as engine:
        factory = session_factory_for(engine)
        async with factory() as session:
            available = {
                "engine": engine,
                "file_engine": engine,
                "session_factory": factory,
                "session": session,
            }
            unknown = set(parameters) - set(available)
            if unknown:
                raise TypeError(
                    f"{func.__qualname__} takes {sorted(unknown)}; a captured run "
                    f"can pass only {sorted(available)}"
                )
            with _capturing(engine) as captured:
                captured.result = func(**{name: available[name] for name in parameters})
                if inspect.isawaitable(captured.result):
                    captured.result = await captured.result
            captured.had_database = bool(parameters)
            captured.dialect = engine.dialect.name
            return captured


def _capture_sync(func: Callable[..., Any]) -> Capture:
    """Run a sync example, ``func(sync_session)``, on a fresh pysqlite database."""
    if list(inspect.signature(func).parameters) != ["sync_session"]:
        raise TypeError(f"{func.__qualname__}: a sync example takes only sync_session")
    with fresh_sync_database() as engine, Session(engine) as sync_session:
        with _capturing(engine) as captured:
            captured.result = func(sync_session)
        captured.dialect = engine.dialect.name
        return captured


def capture(target: str, seed: str | Seed | None = None) -> Capture:
    """Run a snippet on a fresh seeded database, recording what it sent.

    Its parameters are filled by name: ``engine``, ``session_factory``, ``session``
    (async, in-memory), ``file_engine`` (async, on a database file, so the pool
    holds separate connections); or ``sync_session`` alone (a pysqlite Session).
    """
    checked_database_url(database_url())
    func = load_callable(target)
    if "sync_session" in inspect.signature(func).parameters:
        if seed:
            raise TypeError("sync examples (sync_session) run on the sample data only")
        return _capture_sync(func)
    seed_func = load_callable(seed) if isinstance(seed, str) else seed
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(_capture(func, seed_func or add_sample_data, directory))


def describe_error(error: BaseException) -> str:
    """The last line of a traceback, as Python prints it."""
    cls = type(error)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return f"{module}{cls.__qualname__}: {error}"


# --- What a page shows of a run, as JSON data a record keeps --------------------

# SQLAlchemy names an anonymous bound parameter after the id() of its object, and
# Python's default repr() shows an object's address: both change on every run.
_ANONYMOUS_PARAMETER = re.compile(r"%\((\d+) param\)s")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def stable_output(text: str) -> str:
    """``text`` with run-to-run noise made stable, so two runs record the same bytes.

    Anonymous parameters are renumbered in order of appearance (``%(param_1)s``, as
    SQLAlchemy names them in compiled SQL), and addresses in reprs are dropped.
    """
    numbers: dict[str, int] = {}

    def renumber(match: re.Match[str]) -> str:
        number = numbers.setdefault(match[1], len(numbers) + 1)
        return f"%(param_{number})s"

    return _ADDRESS.sub(">", _ANONYMOUS_PARAMETER.sub(renumber, text))


def _sql_shown(log: StatementLog) -> str:
    blocks = []
    for statement in log.statements:
        sql = statement.sql.strip()
        if statement.parameters not in ((), [], {}, None):
            sql += f"\n-- parameters: {statement.parameters!r}"
        blocks.append(sql + ";")
    return "\n\n".join(blocks)


def run_output(target: str, seed: str | None = None) -> dict[str, Any]:
    """What ``{captured-run}`` shows of one run: count, SQL, error, warnings, logs
    and the value returned."""
    captured = capture(target, seed)
    failed = captured.error is not None
    return {
        "count": captured.statements.count,
        "sql": stable_output(_sql_shown(captured.statements)),
        "dialect": captured.dialect,
        "had_database": captured.had_database,
        "error": stable_output(describe_error(captured.error)) if failed else None,
        "warnings": [stable_output(warning) for warning in captured.warnings],
        "logged": [stable_output(line) for line in captured.logged],
        "returned": None if failed else stable_output(repr(captured.result)),
        "result": None
        if failed
        else stable_output(pprint.pformat(captured.result, width=80)),
    }


def round_trip_counts(
    seed: str, targets: list[str], sizes: list[int]
) -> list[list[int]]:
    """Statements each target sends at each size (``{round-trips}``): every target
    must work and return the same value at a size; ValueError otherwise."""
    seed_function = load_callable(seed)
    if "parents" not in inspect.signature(seed_function).parameters:
        raise ValueError(
            f"the seed {seed!r} must take a 'parents' argument: "
            "async def seed(session, parents: int)"
        )
    counts: list[list[int]] = [[] for _ in targets]
    for size in sizes:
        sized_seed = functools.partial(seed_function, parents=size)
        results = {}
        for row, target in enumerate(targets):
            captured = capture(target, sized_seed)
            if captured.error is not None:
                raise ValueError(
                    f"{target} raised {describe_error(captured.error)} with {size} "
                    "parents; a round-trip table compares strategies that work."
                )
            results[target] = captured.result
            counts[row].append(captured.statements.count)
        if len({repr(result) for result in results.values()}) > 1:
            raise ValueError(
                f"with {size} parents the strategies returned different values; "
                "each row must compute the same result: "
                + ", ".join(f"{t} -> {r!r:.60}" for t, r in results.items())
            )
    return counts


def table_rows(target: str) -> list[list[str]]:
    """The rows a ``{generated-table}`` function computes (sync or async, no
    arguments), a header row first; ValueError unless they form a table."""
    function = load_callable(target)
    with collected_logs():  # what the measured code logs is not the table's
        rows = function()
        if inspect.isawaitable(rows):
            rows = asyncio.run(rows)
    if not rows or len({len(row) for row in rows}) != 1:
        raise ValueError(
            "must return a list of rows (lists of cells), a header row first, "
            "all of the same length"
        )
    return [[str(cell) for cell in row] for row in rows]
