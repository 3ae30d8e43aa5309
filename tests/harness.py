"""Shared machinery: fresh databases, and running a snippet to capture what it did.

Used by the test fixtures (tests/conftest.py) and by the ``captured-run`` directive
(_ext/captured_run.py), so a page shows exactly what the tests exercise.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import inspect
import itertools
import logging
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    URL,
    Engine,
    create_engine,
    create_mock_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from implicit_io.statement_budgets import StatementLog, record_statements
from snippets.models import Base, sample_users
from tests.configurations import sqlalchemy_line

if TYPE_CHECKING:
    import pytest

#: One variable selects the database; the default is a private in-memory SQLite.
DATABASE_URL_VARIABLE = "GUIDE_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite://"
#: The engines the suite runs on, each through the async driver the guide uses.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
#: What to do about a URL the suite cannot use.
URL_FIX = (
    f"Unset {DATABASE_URL_VARIABLE} to run on private in-memory SQLite databases, "
    "or set it to a PostgreSQL database where the suite may create schemas of its "
    "own, such as postgresql+asyncpg://USER@HOST:5432/DBNAME (`make test-postgres` "
    "starts a throwaway server and does this for you)."
)
#: Seconds to wait for a PostgreSQL server before calling it unreachable.
CONNECT_TIMEOUT = 10

Seed = Callable[[AsyncSession], Awaitable[None]]


def database_url() -> str:
    """The URL the variable names; empty counts as unset."""
    return os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL


class DatabaseURLError(Exception):
    """GUIDE_DATABASE_URL names a database the suite cannot or must not use."""


def _url_error(shown: str, problem: str, fix: str = URL_FIX) -> DatabaseURLError:
    return DatabaseURLError(f"{DATABASE_URL_VARIABLE}={shown}: {problem}. {fix}")


def _in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_file_contents(path: str) -> str:
    """What a SQLite file holds, read without writing to it."""
    if not os.path.exists(path):
        return "which does not exist"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return f"which SQLite cannot read as a database ({error})"
    return f"which holds the tables {names}" if names else "which holds no tables"


async def _check_server(url: URL, shown: str) -> None:
    engine = create_async_engine(url, connect_args={"timeout": CONNECT_TIMEOUT})
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text(
                    "SELECT has_database_privilege(current_database(), 'CREATE'),"
                    " current_user, current_database()"
                )
            )
            may_create, user, database = found.one()
    except DBAPIError as error:
        # SQLAlchemy's asyncpg adapter raises its own class from asyncpg's.
        raise _connect_error(shown, error.orig.__cause__ or error.orig) from None
    except Exception as error:  # OSError, a timeout, or the driver's own error
        # (SQLAlchemy 2.0 lets asyncpg's connection errors through unwrapped).
        raise _connect_error(shown, error) from None
    finally:
        await engine.dispose()
    if not may_create:
        raise _url_error(
            shown,
            f"the role {user!r} may not create schemas in the database {database!r}, "
            "and the suite works only in schemas it creates and drops",
            f"Grant it (GRANT CREATE ON DATABASE {database} TO {user}), or use "
            f"another database. {URL_FIX}",
        )


def _connect_error(shown: str, error: BaseException | None) -> DatabaseURLError:
    """One message per way a connection fails, with what to check."""
    name = type(error).__name__
    checks = {
        "InvalidPasswordError": "check the user name and password in the URL",
        "InvalidAuthorizationSpecificationError": "check the user name and "
        "password in the URL, and that the server lets this user in",
        "InvalidCatalogNameError": "create that database first, or name one that "
        "exists (postgres always does)",
    }
    check = checks.get(name, "check the host and port, and that the server is running")
    return _url_error(
        shown,
        f"cannot connect ({name}: {error})",
        f"{check[0].upper()}{check[1:]}. {URL_FIX}",
    )


def check_database_url(url: str | None = None) -> str:
    """The URL the suite may use, or a DatabaseURLError saying why not and what to do.

    Accepted: in-memory SQLite (the default), and a reachable PostgreSQL database
    through asyncpg, where every fresh database is a schema the harness creates
    and drops. A SQLite *file* is refused whatever it holds: the suite never
    writes to a database file it is given (tests that need a file make their own
    in a temporary directory).
    """
    raw = url or database_url()
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise _url_error(repr(raw), "this is not a database URL") from None
    shown = repr(parsed.render_as_string(hide_password=True))
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ASYNC_DRIVERS:
        raise _url_error(
            shown, f"the suite runs on SQLite and PostgreSQL, not {backend!r}"
        )
    wanted = ASYNC_DRIVERS[backend]
    if driver != wanted:
        raise _url_error(
            shown,
            f"the driver is {driver!r}, but the guide's examples run on {backend} "
            f"through {wanted} (the URL must start with {backend}+{wanted}://)",
        )
    try:
        importlib.import_module(wanted)
    except ImportError:
        raise _url_error(
            shown,
            f"the driver {wanted} is not installed in this environment "
            f"({sys.executable})",
            "Install the pinned requirements (`make test` and `make test-postgres` "
            "do) or pip install -r requirements.txt.",
        ) from None
    if backend == "sqlite":
        if not _in_memory(parsed):
            found = _sqlite_file_contents(parsed.database)
            raise _url_error(
                shown,
                f"this names the SQLite file {parsed.database!r}, {found}; the suite "
                "never writes to a database file it is given, so nothing in it was "
                "touched",
            )
        return raw
    asyncio.run(_check_server(parsed, shown))
    return raw


@functools.cache
def checked_database_url(url: str) -> str:
    """``check_database_url``, once per URL and process (the build asks per run)."""
    return check_database_url(url)


def needs_postgres_binaries() -> pytest.MarkDecorator:
    """Skip where PostgreSQL is not installed, except in CI, which installs it."""
    import pytest  # here: a build loads this module, and needs no pytest

    missing = shutil.which("initdb") is None and not os.environ.get("CI")
    return pytest.mark.skipif(
        missing,
        reason="PostgreSQL's initdb is not on PATH (apt-get install -y postgresql)",
    )


def database_versions(url: str | None = None) -> dict[str, str]:
    """What a suite ran on: SQLAlchemy, greenlet, the driver and the server."""

    async def server_version() -> tuple[str, str, str]:
        engine = create_async_engine(url or database_url())
        try:
            async with engine.connect():
                dialect = engine.dialect
                version = ".".join(map(str, dialect.server_version_info or ()))
                return dialect.name, dialect.driver, version
        finally:
            await engine.dispose()

    server, driver, version = asyncio.run(server_version())
    return {
        "sqlalchemy": metadata.version("sqlalchemy"),
        "greenlet": metadata.version("greenlet"),
        driver: metadata.version(driver),
        server: version,
    }


async def add_sample_data(session: AsyncSession) -> None:
    session.add_all(sample_users())


async def add_nothing(session: AsyncSession) -> None:
    """Seed for examples that start from empty tables."""


# --- A private space per fresh database -----------------------------------------

#: Schemas this process creates are named guide_<token>_<n>: the token keeps two
#: processes (the tests and the site build) apart, and lets a run find its own.
SCHEMA_PREFIX = f"guide_{secrets.token_hex(4)}_"
_schema_numbers = itertools.count()


def _create_schema(schema: str, dbapi_connection: Any, record: Any) -> None:
    """Before SQLAlchemy's first look at the connection, make its schema exist."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    cursor.close()
    dbapi_connection.commit()


async def _drop_schema(engine: AsyncEngine, schema: str) -> None:
    """Drop the schema, first ending any connection a test left open in it."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :schema AND pid <> pg_backend_pid()"
            ),
            {"schema": schema},
        )
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@asynccontextmanager
async def private_engine(
    url: str | None = None, copy_of: sqlite3.Connection | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database space of its own, empty, removed afterwards.

    In-memory SQLite is private by nature; a SQLite file must be a new one the
    caller made. On PostgreSQL the space is a new schema, the only entry of the
    connections' ``search_path``, dropped with everything in it at the end: the
    tables, rows, functions and triggers of other schemas are never touched.
    """
    url = url or database_url()
    if make_url(url).get_backend_name() != "postgresql":
        # copy_of: an in-memory database to start from (see fresh_database).
        options = {"connect_args": {"factory": _copying(copy_of)}} if copy_of else {}
        engine = create_async_engine(url, **options)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    # The pid too: a parallel build forks workers that share the token and counter.
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{next(_schema_numbers)}"
    settings = {"search_path": schema, "application_name": schema}
    engine = create_async_engine(url, connect_args={"server_settings": settings})
    event.listen(
        engine.sync_engine,
        "connect",
        functools.partial(_create_schema, schema),
        insert=True,
        once=True,
    )
    try:
        yield engine
    finally:
        await engine.dispose()
        await _drop_schema(engine, schema)
        await engine.dispose()


async def drop_leftover_schemas(url: str | None = None) -> list[str]:
    """Drop what this process's interrupted fresh databases left: its own only."""
    engine = create_async_engine(url or database_url())
    try:
        async with engine.begin() as conn:
            names = list(
                await conn.scalars(
                    text(
                        "SELECT nspname FROM pg_namespace "
                        "WHERE starts_with(nspname, :prefix) ORDER BY nspname"
                    ),
                    {"prefix": SCHEMA_PREFIX},
                )
            )
            for name in names:
                await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        return names
    finally:
        await engine.dispose()


@functools.cache
def _create_all_script(url: URL, tables: frozenset[str]) -> str:
    """The DDL ``create_all`` sends for these tables (and their triggers), as one
    script: compiled once per process, for the dialect of ``url``."""
    statements: list[str] = []

    def collect(ddl: Any, *args: Any, **kwargs: Any) -> None:
        statements.append(str(ddl.compile(dialect=recorder.dialect)).strip())

    recorder = create_mock_engine(url, collect)
    Base.metadata.create_all(recorder, checkfirst=False)
    return ";\n".join(statements) + ";"


async def _create_all_in_one_round_trip(engine: AsyncEngine) -> None:
    """``create_all``, sent as one script: one round trip instead of one per table,
    for every test and every captured run. asyncpg runs a script as one simple
    query; aiosqlite hands it to SQLite's ``executescript`` in one call to its thread.
    """
    script = _create_all_script(engine.url, frozenset(Base.metadata.tables))
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            await raw.execute(script)
        else:
            await raw.executescript(script)


#: Seeded databases to copy, per process and seed; SQLite in memory only. A fresh
#: database starts as a copy of one (SQLite's backup API, run as its connection
#: opens) instead of creating every table and running the ORM seed again: a third
#: of a captured run. Per process, because a SQLite connection must not cross a
#: fork (a parallel build forks its readers).
_seeded: dict[tuple[int, frozenset[str], Any], sqlite3.Connection] = {}


def _seed_key(seed: Seed) -> Any | None:
    """What identifies a seed's rows: a module-level function, or a partial of one
    with hashable arguments; None (never copied) for anything else."""
    if isinstance(seed, functools.partial):
        inner = _seed_key(seed.func)
        arguments = (seed.args, tuple(sorted(seed.keywords.items())))
        try:
            hash(arguments)
        except TypeError:
            return None
        return None if inner is None else (inner, arguments)
    if inspect.isfunction(seed) and "<" not in seed.__qualname__:
        return seed
    return None


def _copying(template: sqlite3.Connection) -> type[sqlite3.Connection]:
    """A connection class whose new database starts as a copy of ``template``."""

    class CopyOfSeeded(sqlite3.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            template.backup(self)

    return CopyOfSeeded


@asynccontextmanager
async def fresh_database(
    seed: Seed = add_sample_data, url: str | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database with every mapped table, then seeded."""
    url = url or database_url()
    in_memory = (
        make_url(url).get_backend_name() == "sqlite" and not make_url(url).database
    )
    # The tables too: importing a snippet module can map more of them.
    tables = frozenset(Base.metadata.tables)
    key = (os.getpid(), tables, _seed_key(seed)) if in_memory else None
    template = _seeded.get(key) if key and key[2] is not None else None
    if template is not None:
        async with private_engine(url, copy_of=template) as engine:
            # Open the connection now, as creating and seeding would have: the
            # example's first statement must find it open (a failed implicit load
            # that has to open one fails differently).
            async with engine.connect():
                pass
            yield engine
        return
    async with private_engine(url) as engine:
        # A new space holds nothing: create without looking, drop nothing.
        await _create_all_in_one_round_trip(engine)
        async with async_sessionmaker(engine)() as session:
            await seed(session)
            await session.commit()
        if key and key[2] is not None:
            _seeded[key] = await _copy_out(engine)
        yield engine


async def _copy_out(engine: AsyncEngine) -> sqlite3.Connection:
    """The engine's in-memory database, copied into a connection of this process."""
    copy = sqlite3.connect(":memory:", check_same_thread=False)
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.backup(copy)
    return copy


@contextmanager
def fresh_sync_database() -> Iterator[Engine]:
    """A sync (pysqlite) engine on a new in-memory database with the sample data."""
    engine = create_engine("sqlite://")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(sample_users())
            session.commit()
        yield engine
    finally:
        engine.dispose()


def session_factory_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the policy prescribes (IO201)."""
    return async_sessionmaker(engine, expire_on_commit=False)


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
    """Free what a failed implicit load left behind, so its warnings fire now.

    A lazy load that fails under asyncio leaves the driver's un-awaited coroutine
    referenced from the traceback's frames. Python warns "coroutine ... was never
    awaited" only when that coroutine is collected; clearing the frames and
    collecting makes the warning belong to the code that caused it.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if error.__traceback__ is not None:
            traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__ or getattr(error, "orig", None)
    # Some wrappers (pydantic's ValidationError) keep the frames out of reach, so
    # a full collection is needed. capture() freezes the heap first, which keeps
    # this cheap inside a big process such as a Sphinx build.
    gc.collect()


#: How a refused implicit load arrives (see failed_load_shape()).
WRAPPED = "StatementError wrapping MissingGreenlet"
BARE = "bare MissingGreenlet"


def failed_load_shape(
    engine: AsyncEngine | Engine | None = None, *, opens_connection: bool = False
) -> str:
    """How this SQLAlchemy line and ``engine``'s driver (by default, the one
    GUIDE_DATABASE_URL names) raise a refused implicit load.

    2.1 runs the load on a connection that is already open (the session's, or an
    idle one from the pool) as far as the cursor, and wraps the refusal in a
    ``StatementError`` naming the SQL; the abandoned cursor coroutine then warns
    "never awaited". When the load must first open a connection (``NullPool``
    after a commit, a pool with no idle connection), opening it is what is
    refused, and 2.1 raises ``MissingGreenlet`` bare. 2.0 raises it bare in every
    case, with no warning (tests/test_troubleshooting.py proves each). That is
    aiosqlite. asyncpg is refused later, in ``cursor.execute`` (after the statement
    events): bare on both lines, and no warning, because SQLAlchemy closes the
    refused coroutine.
    """
    if engine is not None:
        driver = engine.dialect.driver
    else:
        driver = make_url(database_url()).get_driver_name()
    wraps = (
        driver == "aiosqlite" and sqlalchemy_line() == "2.1" and not opens_connection
    )
    return WRAPPED if wraps else BARE


@dataclass
class FailedLoad:
    """An implicit load asyncio refused: the statements sent, then the error."""

    log: StatementLog
    #: The SQL of the loads asyncio refused (when a statement was built).
    refused: list[str] = field(default_factory=list)
    shape: str = ""
    #: The "never awaited" warnings the failed load left.
    warned: list[str] = field(default_factory=list)
    error: BaseException = field(init=False)

    def __str__(self) -> str:
        """What happened, as a page shows it: the error, then what it warned."""
        lines = [f"Raised: {describe_error(self.error)}"]
        lines += [f"Warned: RuntimeWarning: {message}" for message in self.warned]
        return "\n".join(lines)

    @property
    def attempted(self) -> str:
        """The SQL of the refused load, where one was built."""
        return self.refused[-1] if self.refused else ""


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


@contextmanager
def never_awaited_warnings(
    shape: str | None = None, match: str = "never awaited"
) -> Iterator[list[str]]:
    """The "coroutine ... was never awaited" warnings failed loads leave in the block.

    Where this line wraps a failed load (``shape`` is ``WRAPPED``; by default, this
    line's shape on an open connection), at least one must match ``match``; where
    it raises bare, there must be none. Other warnings pass through untouched.
    """
    shape = shape or failed_load_shape()
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
        gc.collect()
    for warning in caught:
        message = str(warning.message)
        if issubclass(warning.category, RuntimeWarning) and "never awaited" in message:
            messages.append(message)
        else:  # not ours to judge: let it reach the test run
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if shape == WRAPPED:
        assert any(re.search(match, m) for m in messages), (
            f"no RuntimeWarning matching {match!r} (warned: {messages})"
        )
    else:
        assert not messages, f"{shape} should leave no warning, got {messages}"


@contextmanager
def expect_missing_greenlet(
    engine: AsyncEngine | Engine,
    match: str = "never awaited",
    *,
    opens_connection: bool = False,
) -> Iterator[FailedLoad]:
    """Expect the block to fail in an implicit load, in this line's true shape.

    ``failed_load_shape(opens_connection=...)`` says which shape: a
    ``StatementError`` whose ``.orig`` is ``MissingGreenlet`` followed by the
    "coroutine ... was never awaited" ``RuntimeWarning`` (matching ``match``), or
    a bare ``MissingGreenlet`` and no such warning. Pass ``opens_connection=True``
    when the load has to open a connection first. The yielded object's ``.log``
    records what the block sent, ``.attempted`` the refused SQL where known;
    ``.error`` is set at the block's end.
    """
    import pytest  # here: a build loads this module, and needs no pytest

    shape = failed_load_shape(engine, opens_connection=opens_connection)
    with never_awaited_warnings(shape, match) as warned:
        with (
            record_sent(engine) as (log, refused),
            pytest.raises((StatementError, MissingGreenlet)) as raised,
        ):
            failed = FailedLoad(log, refused, shape, warned)
            yield failed
        failed.error = raised.value
        release_failed_io(raised.value)
    error = failed.error
    if shape == WRAPPED:
        assert type(error) is StatementError, f"expected {shape}, got {error!r}"
        assert isinstance(error.orig, MissingGreenlet), repr(error.orig)
    else:
        assert type(error) is MissingGreenlet, f"expected {shape}, got {error!r}"


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
    # Everything alive now outlives the run: leave it out of later collections.
    gc.freeze()
    if "sync_session" in inspect.signature(func).parameters:
        if seed:
            raise TypeError("sync examples (sync_session) run on the sample data only")
        return _capture_sync(func)
    seed_func = load_callable(seed) if isinstance(seed, str) else seed
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(_capture(func, seed_func or add_sample_data, directory))


def without_labels(sql: str) -> str:
    """SQL without the labels 2.0's loaders add (``post.id AS post_id``)."""
    return re.sub(r"(\w+\.\w+) AS \w+", r"\1", sql)


def describe_error(error: BaseException) -> str:
    """The last line of a traceback, as Python prints it."""
    cls = type(error)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return f"{module}{cls.__qualname__}: {error}"
