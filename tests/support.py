"""Helpers for tests of failed implicit loads: what each line and driver raises."""

from __future__ import annotations

import gc
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from guide_runtime.capture import describe_error, record_sent, release_failed_io
from guide_runtime.configurations import sqlalchemy_line
from guide_runtime.database import database_url
from implicit_io.statement_budgets import StatementLog

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
