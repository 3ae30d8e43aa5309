"""The database every example and test runs on: which one, checked, and private.

``GUIDE_DATABASE_URL`` is read here and nowhere else. Unset, each fresh database is a
private in-memory SQLite; a PostgreSQL URL gives each one a schema of its own,
created empty and dropped afterwards (:func:`private_engine`). A URL the suite
cannot or must not use is refused by :func:`check_database_url` with one message
naming the variable and the fix.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import itertools
import os
import platform
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from importlib import metadata
from typing import Any

from sqlalchemy import (
    URL,
    Engine,
    create_engine,
    create_mock_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from guide_runtime import DATABASE_URL_VARIABLE
from snippets.models import Base, sample_users

#: Unset, the database is a private in-memory SQLite.
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


def database_versions(url: str | None = None) -> dict[str, str]:
    """What a suite ran on: Python, SQLAlchemy, greenlet, the driver and the server."""

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
        "python": platform.python_version(),
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
    url: str | None = None,
    copy_of: sqlite3.Connection | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database space of its own, empty, removed afterwards.

    In-memory SQLite is private by nature; a SQLite file must be a new one the
    caller made. On PostgreSQL the space is a new schema, the only entry of the
    connections' ``search_path``, dropped with everything in it at the end: the
    tables, rows, functions and triggers of other schemas are never touched.
    ``engine_options`` go to ``create_async_engine`` (``poolclass=NullPool``: on
    SQLite, only with a file, since each connection to ``:memory:`` is a new
    database).
    """
    url = url or database_url()
    extra = dict(engine_options or {})
    if make_url(url).get_backend_name() != "postgresql":
        # copy_of: an in-memory database to start from (see fresh_database).
        options = {"connect_args": {"factory": _copying(copy_of)}} if copy_of else {}
        engine = create_async_engine(url, **options, **extra)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    # The pid too: a parallel build forks workers that share the token and counter.
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{next(_schema_numbers)}"
    settings = {"search_path": schema, "application_name": schema}
    engine = create_async_engine(
        url, connect_args={"server_settings": settings}, **extra
    )
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
    seed: Seed = add_sample_data,
    url: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database with every mapped table, then seeded
    (``engine_options``: as for :func:`private_engine`)."""
    url = url or database_url()
    in_memory = (
        make_url(url).get_backend_name() == "sqlite" and not make_url(url).database
    )
    if in_memory and engine_options:
        raise ValueError(
            "engine options such as a pool class need a SQLite file: each "
            "connection to an in-memory database would be a database of its own"
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
    async with private_engine(url, engine_options=engine_options) as engine:
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
