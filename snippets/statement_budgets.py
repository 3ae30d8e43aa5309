"""Statement budgets in a service's tests: a fixture, a route and its budgeted test.

The budgets themselves are product code, in :mod:`implicit_io.statement_budgets`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from implicit_io.statement_budgets import StatementBudget, assert_statements
from snippets.models import User


# region fixture
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
