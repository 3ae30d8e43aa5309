import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError, MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import joinedload

from snippets.counting_statements import record_statements
from snippets.eager_loading import (
    post_titles_by_author,
    post_titles_by_author_joined,
    post_titles_by_author_lazy,
    posts_with_authors,
)
from snippets.models import User
from tests.harness import release_failed_io

EXPECTED_TITLES = {
    "ada": ["Notes on engines", "On sessions"],
    "grace": ["Compilers"],
    "linus": [],
}


async def test_lazy_access_fails_with_missing_greenlet(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with pytest.warns(RuntimeWarning, match="'Connection.cursor' was never awaited"):
        with record_statements(engine) as log, pytest.raises(StatementError) as raised:
            await post_titles_by_author_lazy(session)
        release_failed_io(raised.value)
    # 2.1 wraps the MissingGreenlet in a StatementError naming the lazy load's SQL.
    assert isinstance(raised.value.orig, MissingGreenlet)
    assert not isinstance(raised.value, MissingGreenlet)
    assert "FROM post" in raised.value.statement
    assert log.count == 1  # only the users query got out


async def test_selectinload_sends_exactly_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_titles_by_author(session) == EXPECTED_TITLES
    assert log.count == 2
    assert " IN (" in log.statements[1].sql


async def test_joinedload_sends_exactly_one_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_titles_by_author_joined(session) == EXPECTED_TITLES
    assert log.count == 1
    assert "LEFT OUTER JOIN post" in log.statements[0].sql


async def test_joined_collection_without_unique_is_refused(session: AsyncSession):
    result = await session.scalars(select(User).options(joinedload(User.posts)))
    with pytest.raises(InvalidRequestError, match="unique"):
        result.all()


async def test_joinedload_many_to_one_sends_one_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        rows = await posts_with_authors(session)
    assert rows == [
        ("Notes on engines", "ada"),
        ("On sessions", "ada"),
        ("Compilers", "grace"),
    ]
    assert log.count == 1
