"""A service's tests with the toolkit's pytest plugin: budgets by marker and fixture.

The plugin is installed with the package; these tests need no import from it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from implicit_io.statement_budgets import StatementBudget
from snippets.models import Post, User


# region budget_marker
async def post_titles_by_author(session: AsyncSession) -> dict[str, list[str]]:
    users = await session.scalars(
        select(User).options(selectinload(User.posts)).order_by(User.name)
    )
    return {user.name: [post.title for post in user.posts] for user in users}


@pytest.mark.max_statements(2)
async def test_post_titles_by_author(session: AsyncSession) -> None:
    titles = await post_titles_by_author(session)
    assert titles["grace"] == ["Compilers"]


# endregion budget_marker


# region budget_fixture
async def test_each_author_is_loaded_with_its_posts(
    session: AsyncSession, statement_budget: StatementBudget
) -> None:
    with statement_budget.exactly(2):  # the posts, then their authors in one query
        posts = (
            await session.scalars(select(Post).options(selectinload(Post.author)))
        ).all()
    with statement_budget.exactly(0):  # reading what was loaded sends nothing
        authors = {post.author.name for post in posts}
    assert authors == {"ada", "grace"}


# endregion budget_fixture
