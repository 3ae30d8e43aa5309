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
from typing import Any

import pytest
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

from snippets.counting_statements import StatementLog, record_statements
from snippets.models import Base, sample_users

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
async def private_engine(url: str | None = None) -> AsyncIterator[AsyncEngine]:
    """An engine on a database space of its own, empty, removed afterwards.

    In-memory SQLite is private by nature; a SQLite file must be a new one the
    caller made. On PostgreSQL the space is a new schema, the only entry of the
    connections' ``search_path``, dropped with everything in it at the end: the
    tables, rows, functions and triggers of other schemas are never touched.
    """
    url = url or database_url()
    if make_url(url).get_backend_name() != "postgresql":
        engine = create_async_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    schema = f"{SCHEMA_PREFIX}{next(_schema_numbers)}"
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
    """``create_all`` on PostgreSQL, sent as one script (asyncpg runs it as one
    simple query): one round trip instead of one per table, for every test."""
    script = _create_all_script(engine.url, frozenset(Base.metadata.tables))
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(script)


@asynccontextmanager
async def fresh_database(
    seed: Seed = add_sample_data, url: str | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database with every mapped table, then seeded."""
    async with private_engine(url) as engine:
        # A new space holds nothing: create without looking, drop nothing.
        if engine.dialect.name == "postgresql":
            await _create_all_in_one_round_trip(engine)
        else:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all, checkfirst=False)
        async with async_sessionmaker(engine)() as session:
            await seed(session)
            await session.commit()
        yield engine


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


def refused_statement(log: StatementLog, error: BaseException) -> str | None:
    """The SQL of a load asyncio refused, taken out of ``log`` if it is there.

    The driver decides where a failed load stops. aiosqlite fails while opening
    the cursor, before the statement events: SQLAlchemy wraps the
    ``MissingGreenlet`` in a ``StatementError`` that names the SQL, and the log
    never saw it. asyncpg fails in ``cursor.execute``, after the events: the
    ``MissingGreenlet`` comes bare, and the log's last entry is the statement that
    never reached the server, so it is removed: the log keeps what was sent.
    """
    if isinstance(error, StatementError) and isinstance(error.orig, MissingGreenlet):
        return error.statement
    if isinstance(error, MissingGreenlet) and log.statements:
        return log.statements.pop().sql
    return None


def missing_greenlet_in(error: BaseException) -> bool:
    """Whether asyncio refused I/O: a bare ``MissingGreenlet`` or one wrapped."""
    return isinstance(error, MissingGreenlet) or isinstance(
        getattr(error, "orig", None), MissingGreenlet
    )


@dataclass(frozen=True)
class FailedLoadShape:
    """What a refused implicit load looks like on one async driver."""

    #: A ``StatementError`` wrapping ``MissingGreenlet`` (else a bare one).
    wrapped: bool
    #: It leaves a "coroutine ... was never awaited" ``RuntimeWarning``.
    warns: bool
    #: The statement events (and so a StatementLog) saw the refused statement.
    logged: bool


#: Per driver and SQLAlchemy line. On 2.1, aiosqlite is refused while opening the
#: cursor (inside the statement's execution, so it is wrapped), asyncpg later, in
#: cursor.execute, after the statement events. On 2.0 both are refused like asyncpg.
FAILED_LOADS = {
    ("aiosqlite", "2.1"): FailedLoadShape(wrapped=True, warns=True, logged=False),
    ("asyncpg", "2.1"): FailedLoadShape(wrapped=False, warns=False, logged=True),
    ("aiosqlite", "2.0"): FailedLoadShape(wrapped=False, warns=False, logged=True),
    ("asyncpg", "2.0"): FailedLoadShape(wrapped=False, warns=False, logged=True),
}


@dataclass
class FailedLoad:
    """An implicit load asyncio refused: the statements sent, then the error."""

    log: StatementLog
    error: StatementError | MissingGreenlet = field(init=False)
    #: The SQL of the load that was refused (never sent).
    statement: str = field(init=False)


def failed_load_shape(engine: AsyncEngine | Engine) -> FailedLoadShape:
    """How a refused load looks with this engine's driver and this SQLAlchemy."""
    line = ".".join(metadata.version("sqlalchemy").split(".")[:2])
    key = (engine.dialect.driver, line)
    if key not in FAILED_LOADS:
        raise ValueError(f"no known failed-load shape for {key} (tests/harness.py)")
    return FAILED_LOADS[key]


@contextmanager
def expect_never_awaited(
    engine: AsyncEngine | Engine, match: str = "never awaited"
) -> Iterator[list[str]]:
    """The "coroutine ... was never awaited" warnings failed loads in the block leave.

    aiosqlite leaves one per failed load (at least one matching ``match`` is
    required); asyncpg leaves none (any is an error). The list is filled at the
    block's end; other warnings pass through.
    """
    driver, shape = engine.dialect.driver, failed_load_shape(engine)
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    for w in caught:
        if issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if shape.warns:
        assert any(re.search(match, m) for m in messages), (
            f"DID NOT WARN: no RuntimeWarning matching {match!r} on {driver}; "
            f"warned: {messages}"
        )
    else:
        assert not messages, f"{driver} is not expected to warn: {messages}"


@contextmanager
def expect_missing_greenlet(
    engine: AsyncEngine | Engine, match: str = "never awaited"
) -> Iterator[FailedLoad]:
    """Expect the block to fail in an implicit load, as 2.1 fails it under asyncio.

    On aiosqlite: a ``StatementError`` whose ``.orig`` is ``MissingGreenlet``, and
    the "coroutine ... was never awaited" ``RuntimeWarning`` (matching ``match``)
    the failed load leaves, released here so it belongs to this block. On asyncpg:
    a bare ``MissingGreenlet`` and no such warning. The yielded object's ``.log``
    records what the block sent and ``.statement`` the refused load's SQL; both
    and ``.error`` are set at the block's end.
    """
    expected = StatementError if failed_load_shape(engine).wrapped else MissingGreenlet
    with expect_never_awaited(engine, match):
        with record_statements(engine) as log, pytest.raises(expected) as raised:
            failed = FailedLoad(log)
            yield failed
        failed.error = raised.value
        release_failed_io(raised.value)
    statement = refused_statement(log, failed.error)
    assert statement is not None, f"not a refused load: {failed.error!r}"
    failed.statement = statement


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
        record_statements(engine) as log,
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
            refused_statement(log, error)  # the log shows what was sent
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


def describe_error(error: BaseException) -> str:
    """The last line of a traceback, as Python prints it."""
    cls = type(error)
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return f"{module}{cls.__qualname__}: {error}"
