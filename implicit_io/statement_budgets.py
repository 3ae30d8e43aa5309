"""Count the SQL a block sends; fail a test when it sends more (or other) than planned.

A budget names the rule it enforces (IO402) and, when it fails, lists every
statement sent, so the extra lazy load is in the failure message rather than in a
debugger session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from implicit_io.rule_links import rule_url


# region recorder
@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


@dataclass
class StatementLog:
    statements: list[Statement] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __str__(self) -> str:
        return "\n".join(
            f"[{number}] {statement.sql} {statement.parameters!r}"
            for number, statement in enumerate(self.statements, start=1)
        )


@contextmanager
def record_statements(
    engine: AsyncEngine | Engine | None = None,
) -> Iterator[StatementLog]:
    """Record every statement sent inside the block (by any engine if ``None``)."""
    # AsyncEngine is a facade: events are dispatched by the sync engine inside it.
    # The Engine class itself is a valid target too: then every engine reports.
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    target = Engine if target is None else target
    log = StatementLog()

    def on_execute(conn, cursor, sql, parameters, context, executemany) -> None:
        log.statements.append(Statement(sql, parameters))

    event.listen(target, "before_cursor_execute", on_execute)
    try:
        yield log
    finally:
        event.remove(target, "before_cursor_execute", on_execute)


# endregion recorder

Budget = AbstractContextManager[StatementLog]
Bind = Engine | AsyncEngine | Connection | AsyncConnection | Session | AsyncSession


# region budgets
class StatementBudgetExceeded(AssertionError):
    """A block sent a different number of statements than its budget allows."""


def _engine_of(bind: Bind | None) -> Engine | None:
    """The sync engine whose events see every statement ``bind`` sends."""
    if isinstance(bind, AsyncSession):
        bind = bind.sync_session
    if isinstance(bind, Session):
        bind = bind.get_bind()
    if isinstance(bind, (AsyncEngine, AsyncConnection)):
        bind = bind.sync_engine
    if isinstance(bind, Connection):
        bind = bind.engine
    return bind


@contextmanager
def _budget(bind: Bind | None, limit: int, *, exact: bool) -> Iterator[StatementLog]:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"a statement budget is a count >= 0, not {limit!r}")
    with record_statements(_engine_of(bind)) as log:
        yield log
    if log.count > limit or (exact and log.count != limit):
        expected = f"exactly {limit}" if exact else f"at most {limit}"
        raise StatementBudgetExceeded(
            f"IO402 expected {expected} statement(s), {log.count} sent:\n{log}\n"
            f"See {rule_url('IO402')}"
        )


def assert_statements(bind: Bind | None, expected: int) -> Budget:
    """Fail unless the block sends exactly ``expected`` statements."""
    return _budget(bind, expected, exact=True)


def max_statements(bind: Bind | None, limit: int) -> Budget:
    """Fail if the block sends more than ``limit`` statements."""
    return _budget(bind, limit, exact=False)


class StatementBudget:
    """Budgets on one bind (``None``: every engine), as the fixtures hand them out."""

    def __init__(self, bind: Bind | None = None) -> None:
        self.bind = bind

    def exactly(self, expected: int) -> Budget:
        return assert_statements(self.bind, expected)

    def at_most(self, limit: int) -> Budget:
        return max_statements(self.bind, limit)


# endregion budgets
