"""Count and capture the SQL statements a block of code sends.

The policy's testing checks ask tests to prove that a route sends the statements
it should and no hidden extra ones. This recorder is how the guide proves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from snippets.models import User


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
def record_statements(engine: AsyncEngine | Engine) -> Iterator[StatementLog]:
    """Record every statement sent to the database inside the ``with`` block."""
    # AsyncEngine is a facade: events are dispatched by the sync engine inside it.
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    log = StatementLog()

    def on_execute(conn, cursor, sql, parameters, context, executemany) -> None:
        log.statements.append(Statement(sql, parameters))

    event.listen(sync_engine, "before_cursor_execute", on_execute)
    try:
        yield log
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_execute)


# endregion recorder


# region usage
async def user_names_and_statement_count(
    engine: AsyncEngine, session: AsyncSession
) -> tuple[list[str], int]:
    with record_statements(engine) as log:
        users = (await session.scalars(select(User).order_by(User.name))).all()
        # Reading columns the query loaded sends nothing more.
        names = [user.name for user in users]
    return names, log.count


# endregion usage
