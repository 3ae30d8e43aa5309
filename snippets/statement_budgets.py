"""Statement budgets: fail a test when a block sends more (or other) SQL than planned.

Built on the recorder of the counting-statements page. A budget names the rule it
enforces (IO402) and, when it fails, lists every statement sent, so the extra lazy
load is in the failure message rather than in a debugger session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, selectinload

from snippets.counting_statements import StatementLog, record_statements
from snippets.models import User
from snippets.rule_links import rule_url

Budget = AbstractContextManager[StatementLog]
Bind = Engine | AsyncEngine | Connection | AsyncConnection | Session | AsyncSession


# region budgets
class StatementBudgetExceeded(AssertionError):
    """A block sent a different number of statements than its budget allows."""


def _engine_of(bind: Bind) -> Engine:
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
def _budget(bind: Bind, limit: int, *, exact: bool) -> Iterator[StatementLog]:
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


def assert_statements(bind: Bind, expected: int) -> Budget:
    """Fail unless the block sends exactly ``expected`` statements."""
    return _budget(bind, expected, exact=True)


def max_statements(bind: Bind, limit: int) -> Budget:
    """Fail if the block sends more than ``limit`` statements."""
    return _budget(bind, limit, exact=False)


# endregion budgets


# region fixture
class StatementBudget:
    """What the ``statement_budget`` fixture gives a test: budgets on one engine."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def exactly(self, expected: int) -> Budget:
        return assert_statements(self.bind, expected)

    def at_most(self, limit: int) -> Budget:
        return max_statements(self.bind, limit)


@pytest.fixture(name="statement_budget")
def statement_budget_fixture(engine: AsyncEngine) -> StatementBudget:
    """Budgets on the test's ``engine`` fixture (put this in your conftest.py)."""
    return StatementBudget(engine)


# endregion fixture


# region usage
async def users_with_posts(session: AsyncSession) -> dict[str, int]:
    users = await session.scalars(select(User).options(selectinload(User.posts)))
    return {user.name: len(user.posts) for user in users}


async def test_users_with_posts_sends_two_statements(
    session: AsyncSession, statement_budget: StatementBudget
) -> None:
    with statement_budget.exactly(2):
        counts = await users_with_posts(session)
    assert counts == {"ada": 2, "grace": 1, "linus": 0}


# endregion usage


async def budget_failure_message(session: AsyncSession) -> None:
    """A budget of one statement around code that needs two: the failure shown."""
    with assert_statements(session, 1):
        await users_with_posts(session)
