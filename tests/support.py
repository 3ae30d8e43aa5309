"""Helpers for tests of failed implicit loads: what each line and driver raises."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, make_url
from sqlalchemy.exc import MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from guide_runtime.capture import (
    describe_error,
    failed_loads_warn_here,
    record_sent,
    release_failed_io,
)
from guide_runtime.configurations import sqlalchemy_line
from guide_runtime.database import (
    Seed,
    add_sample_data,
    database_url,
    fresh_database,
)
from implicit_io.statement_budgets import StatementLog

#: How a refused implicit load arrives (see failed_load_shape()).
WRAPPED = "StatementError wrapping MissingGreenlet"
BARE = "bare MissingGreenlet"


def _driver(engine: AsyncEngine | Engine | None) -> str:
    if engine is not None:
        return engine.dialect.driver
    return make_url(database_url()).get_driver_name()


def failed_load_shape(
    engine: AsyncEngine | Engine | None = None,
    *,
    opens_connection: bool = False,
    pings: bool = False,
) -> str:
    """How this SQLAlchemy line and ``engine``'s driver (by default, the one
    GUIDE_DATABASE_URL names) raise a refused implicit load.

    2.1 runs the load on a connection that is already open and usable without I/O
    (the session's, or an idle one from a pool without ``pool_pre_ping``) as far as
    the cursor, and wraps the refusal in a ``StatementError`` naming the SQL. When
    the checkout must first do I/O of its own, open a connection (``NullPool``
    after a commit, a pool with no idle connection) or ping the idle one
    (``pool_pre_ping=True``, ``pings``), that I/O is what is refused, and 2.1
    raises ``MissingGreenlet`` bare. 2.0 raises it bare in every case
    (tests/examples/test_troubleshooting.py proves each, on each pool). That is
    aiosqlite. asyncpg is refused later, in ``cursor.execute`` (after the
    statement events), or while connecting or pinging: bare on both lines.
    """
    wraps = (
        _driver(engine) == "aiosqlite"
        and sqlalchemy_line() == "2.1"
        and not opens_connection
        and not pings
    )
    return WRAPPED if wraps else BARE


def failed_load_warning(
    engine: AsyncEngine | Engine | None = None,
    *,
    opens_connection: bool = False,
    pings: bool = False,
) -> str | None:
    """The "coroutine ... was never awaited" warning a refused implicit load leaves
    on this line and driver, as a pattern; None where it leaves none.

    On 2.1 the refused ``await_()`` leaves the driver's coroutine un-awaited:
    aiosqlite's ``Connection.cursor`` when the load (or the pool's pre-ping,
    ``pings``) ran on an open connection, asyncpg's ``connect`` when the load had
    to open one (asyncpg's refused ``cursor.execute`` and pre-ping coroutines are
    closed by SQLAlchemy, so they leave none). 2.0 leaves none in any case.
    """
    if sqlalchemy_line() != "2.1":
        return None
    driver = _driver(engine)
    if driver == "aiosqlite" and not opens_connection:
        return "coroutine 'Connection.cursor' was never awaited"
    if driver == "asyncpg" and opens_connection:
        return "coroutine 'connect' was never awaited"
    return None


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
def never_awaited_warnings(
    expected: str | None = "", match: str | None = None
) -> Iterator[list[str]]:
    """The "coroutine ... was never awaited" warnings failed loads leave in the block.

    ``expected`` is the warning a failed load leaves here (a pattern), or None
    where it leaves none; by default, this line's on an open connection of the
    configured driver (``failed_load_warning()``). Where one is expected, at least
    one warning must match ``match`` (by default ``expected``); where none is,
    there must be none. Other warnings pass through untouched.

    The block runs in ``failed_loads_warn_here()``, so a dropped coroutine warns
    before its end.
    """
    if expected == "":
        expected = failed_load_warning()
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with failed_loads_warn_here():
            yield messages
    for warning in caught:
        message = str(warning.message)
        if issubclass(warning.category, RuntimeWarning) and "never awaited" in message:
            messages.append(message)
        else:  # not ours to judge: let it reach the test run
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if expected is not None:
        pattern = match or expected
        assert any(re.search(pattern, m) for m in messages), (
            f"no RuntimeWarning matching {pattern!r} (warned: {messages})"
        )
    else:
        assert not messages, f"a failed load here leaves no warning, got {messages}"


@contextmanager
def expect_missing_greenlet(
    engine: AsyncEngine | Engine,
    match: str | None = None,
    *,
    opens_connection: bool = False,
    pings: bool = False,
) -> Iterator[FailedLoad]:
    """Expect the block to fail in an implicit load, in this line's true shape.

    ``failed_load_shape(opens_connection=..., pings=...)`` says which shape: a
    ``StatementError`` whose ``.orig`` is ``MissingGreenlet``, or a bare
    ``MissingGreenlet``; ``failed_load_warning(...)`` which "coroutine ... was
    never awaited" ``RuntimeWarning`` must follow (``match``, where given, narrows
    it), or that none may. Pass ``opens_connection=True`` when the load has to
    open a connection first, ``pings=True`` when the pool pings the idle one it
    hands back (``pool_pre_ping=True``). The yielded object's ``.log`` records what
    the block sent, ``.attempted`` the refused SQL where known; ``.error`` is set
    at the block's end.
    """
    shape = failed_load_shape(engine, opens_connection=opens_connection, pings=pings)
    expected = failed_load_warning(
        engine, opens_connection=opens_connection, pings=pings
    )
    match = match if expected else None
    with never_awaited_warnings(expected, match) as warned:
        with (
            record_sent(engine) as (log, refused),
            pytest.raises((StatementError, MissingGreenlet)) as raised,
        ):
            failed = FailedLoad(log, refused, shape, warned)
            yield failed
        error = failed.error = raised.value
        release_failed_io(error)  # frees the failed load while `error` is held
        # The shape first: where it is wrong, so is the warning, and it says more.
        if shape == WRAPPED:
            assert type(error) is StatementError, f"expected {shape}, got {error!r}"
            assert isinstance(error.orig, MissingGreenlet), repr(error.orig)
        else:
            assert type(error) is MissingGreenlet, f"expected {shape}, got {error!r}"


# --- The pools readers run ----------------------------------------------------------

#: How an engine's pool stands when an implicit load needs a connection, by the id
#: a parametrized test shows (``pool=null``):
#:
#: - ``default``: the engine's own pool (``AsyncAdaptedQueuePool`` on a SQLite file
#:   and on asyncpg), holding the idle connection the session just gave back;
#: - ``null``: ``NullPool`` (common behind PgBouncer), which opens a connection for
#:   every checkout;
#: - ``fresh``: the default pool with no connection yet (just disposed, as after a
#:   restart or a deploy);
#: - ``busy``: the default pool whose every connection is checked out by other
#:   work, as under load, so a checkout opens a new one;
#: - ``pre-ping``: the default pool with ``pool_pre_ping=True``, holding the idle
#:   connection, which it pings (I/O of its own) before handing it back.
POOLS = ("default", "null", "fresh", "busy", "pre-ping")


@dataclass(frozen=True)
class Checkout:
    """What a pool's next checkout does before a load's statement can run: open a
    new connection, or ping the idle one it hands back (both are I/O)."""

    opens_connection: bool = False
    pings: bool = False

    @property
    def does_io(self) -> bool:
        """Whether the checkout itself needs I/O, refused before any statement."""
        return self.opens_connection or self.pings


def pool_ids(pool: str) -> str:
    """The parametrize id of a pool case: ``pool=null``."""
    return f"pool={pool}"


@asynccontextmanager
async def engine_with_pool(
    pool: str, directory: Path, seed: Seed = add_sample_data
) -> AsyncIterator[AsyncEngine]:
    """A new seeded database of this configuration, on an engine with ``pool``'s
    pool class: a file in ``directory`` on SQLite (a pool of separate connections
    needs one), a schema of its own on PostgreSQL."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; known: {POOLS}")
    options: dict[str, object] = {}
    if pool == "null":
        options["poolclass"] = NullPool
    elif pool == "pre-ping":
        options["pool_pre_ping"] = True
    url = None
    if make_url(database_url()).get_backend_name() == "sqlite":
        url = f"sqlite+aiosqlite:///{directory}/pool.db"
    used: list[object] = []  # the driver's connections the pool hands out
    async with fresh_database(seed, url, engine_options=options) as engine:
        expected = NullPool if pool == "null" else AsyncAdaptedQueuePool
        assert type(engine.pool) is expected, engine.pool

        @event.listens_for(engine.sync_engine, "checkout")
        def keep(dbapi_connection: Any, *_: object) -> None:
            used.append(dbapi_connection.driver_connection)

        yield engine
    _join_terminated_aiosqlite_threads(used)


def _join_terminated_aiosqlite_threads(connections: list[object]) -> None:
    """Wait, while this test's event loop is open, for the worker thread of each
    aiosqlite connection to finish.

    A checkout refused by asyncio (a pre-ping, say) makes the pool terminate the
    connection without awaiting it: aiosqlite's ``stop()`` queues the close on
    the connection's thread with a future of this loop. Should the loop close
    first, the thread fails in a later test ("Event loop is closed").
    """
    for connection in connections:
        thread = getattr(connection, "_thread", None)  # aiosqlite's worker
        if thread is not None and thread.is_alive():
            thread.join(timeout=5)


@asynccontextmanager
async def pool_as(engine: AsyncEngine, pool: str) -> AsyncIterator[Checkout]:
    """Put ``engine``'s pool in the state ``pool`` names for the block's next
    checkout; yields what that checkout must do first (open a connection, or
    ping the idle one)."""
    if pool == "fresh":
        await engine.dispose()
    idle = engine.pool.checkedin() if pool == "busy" else 0
    assert idle or pool != "busy", "a busy pool: no idle connection to take"
    if pool == "pre-ping":
        assert engine.pool.checkedin(), "a pre-ping pool: no idle connection to ping"
    held = [await engine.connect() for _ in range(idle)]
    try:
        yield Checkout(
            opens_connection=pool in ("null", "fresh", "busy"),
            pings=pool == "pre-ping",
        )
    finally:
        for connection in held:
            await connection.close()


def without_labels(sql: str) -> str:
    """SQL without the labels 2.0's loaders add (``post.id AS post_id``)."""
    return re.sub(r"(\w+\.\w+) AS \w+", r"\1", sql)


def needs_postgres_binaries() -> pytest.MarkDecorator:
    """Skip where PostgreSQL is not installed, except in CI, which installs it."""
    missing = shutil.which("initdb") is None and not os.environ.get("CI")
    return pytest.mark.skipif(
        missing,
        reason="PostgreSQL's initdb is not on PATH (apt-get install -y postgresql)",
    )
