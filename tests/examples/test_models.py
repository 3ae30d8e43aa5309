from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from snippets import models
from snippets.models import Comment, Post, Role, User, sample_users, user_role


def test_every_relationship_declares_its_loading_strategy() -> None:
    # Other snippet modules map more classes on the same Base; check only these.
    for cls in (User, Role, Post, Comment):
        for relationship in cls.__mapper__.relationships:
            assert relationship.lazy == "select", relationship


def test_base_provides_awaitable_attrs() -> None:
    assert hasattr(User(name="x"), "awaitable_attrs")
    assert issubclass(models.Base, models.AsyncAttrs)


async def test_sample_data_is_loaded_into_every_table(session: AsyncSession) -> None:
    counts = {
        table: await session.scalar(select(func.count()).select_from(table))
        for table in (User, Role, Post, Comment, user_role)
    }
    assert counts == {User: 3, Role: 2, Post: 3, Comment: 3, user_role: 3}


def test_sample_users_build_a_fresh_graph_each_call() -> None:
    first, second = sample_users(), sample_users()
    assert [u.name for u in first] == ["ada", "grace", "linus"]
    assert first[0] is not second[0]
