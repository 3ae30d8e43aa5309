import functools

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from guide_runtime.database import fresh_database, session_factory_for
from snippets.awaitable_attributes import (
    Newsletter,
    NewsletterIssue,
    first_user_post_titles,
    issue_subjects_awaited,
    issue_subjects_eager,
    issue_subjects_refreshed,
    post_counts_awaited_in_a_loop,
    post_counts_eager,
)
from snippets.counting_statements import record_statements
from snippets.eager_loading import _add_authors_with_posts
from snippets.models import User

SUBJECTS = ["2.0 is out", "2.1 is out"]


async def test_awaitable_attribute_loads_in_one_round_trip(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await first_user_post_titles(session)
    assert titles == ["Notes on engines", "On sessions"]
    assert log.count == 2


async def test_awaitable_attribute_already_loaded_sends_nothing(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    stmt = select(User).where(User.name == "ada").options(selectinload(User.posts))
    user = await session.scalar(stmt)
    with record_statements(engine) as log:
        posts = await user.awaitable_attrs.posts
    assert [post.title for post in posts] == ["Notes on engines", "On sessions"]
    assert log.count == 0


@pytest.mark.parametrize("users", [1, 10, 50])
async def test_awaitable_attrs_in_a_loop_grows_with_the_users(users: int) -> None:
    seed = functools.partial(_add_authors_with_posts, parents=users)
    async with fresh_database(seed) as engine:
        factory = session_factory_for(engine)
        async with factory() as session:
            with record_statements(engine) as looped:
                awaited = await post_counts_awaited_in_a_loop(session)
        async with factory() as session:
            with record_statements(engine) as eager:
                loaded = await post_counts_eager(session)
    assert awaited == loaded == {f"author {n}": 2 for n in range(1, users + 1)}
    assert looped.count == users + 1
    assert eager.count == 2


@pytest.mark.seed("awaitable_attributes:_add_newsletters")
async def test_awaitable_attrs_cannot_get_past_lazy_raise(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    assert Newsletter.issues.property.lazy == "raise"
    with (
        record_statements(engine) as log,
        pytest.raises(InvalidRequestError) as raised,
    ):
        await issue_subjects_awaited(session)
    assert str(raised.value) == (
        "'Newsletter.issues' is not available due to lazy='raise'"
    )
    assert log.count == 1  # the newsletter query; the refused load sent nothing


@pytest.mark.seed("awaitable_attributes:_add_newsletters")
async def test_eager_load_overrides_lazy_raise(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await issue_subjects_eager(session) == SUBJECTS
    assert log.count == 2
    assert NewsletterIssue.__tablename__ in log.statements[1].sql


@pytest.mark.seed("awaitable_attributes:_add_newsletters")
async def test_refresh_by_name_loads_a_lazy_raise_relationship(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await issue_subjects_refreshed(session) == SUBJECTS
    assert log.count == 3  # the newsletter, then refresh's row and issues
