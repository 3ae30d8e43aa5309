from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from guide_runtime.configurations import sqlalchemy_line
from implicit_io.statement_budgets import record_statements
from snippets.counting_statements import user_names_and_statement_count
from snippets.models import User
from tests.support import (
    POOLS,
    engine_with_pool,
    expect_missing_greenlet,
    pool_as,
    pool_ids,
    without_labels,
)

# The recorder's own tests are in tests/test_statement_budgets.py, with its code.


async def test_usage_counts_one_statement(engine: AsyncEngine, session: AsyncSession):
    names, count = await user_names_and_statement_count(engine, session)
    assert names == ["ada", "grace", "linus"]
    assert count == 1


async def _lazy_load_refused(engine: AsyncEngine, session: AsyncSession) -> list[str]:
    """The SQL the recorder saw while a lazy load was refused."""
    ada = await session.scalar(select(User).where(User.name == "ada"))
    with (
        record_statements(engine) as log,
        expect_missing_greenlet(engine) as failed,
    ):
        ada.posts  # noqa: B018
    assert "FROM post" in failed.attempted
    return [statement.sql for statement in log.statements]


@pytest.mark.only_on(
    engine="sqlite",
    sqlalchemy="2.1",
    reason="2.1 refuses aiosqlite before the cursor exists, so no event fires",
)
async def test_a_refused_load_is_not_recorded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    assert await _lazy_load_refused(engine, session) == []


@pytest.mark.only_on(
    sqlalchemy="2.0",
    reason="2.0 creates the cursor and fires before_cursor_execute, then refuses "
    "the driver's await",
)
async def test_a_refused_load_is_recorded_though_never_sent(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    [sql] = await _lazy_load_refused(engine, session)
    assert "FROM post" in sql


@pytest.mark.only_on(
    engine="postgresql",
    reason="asyncpg is refused in cursor.execute, after before_cursor_execute fired",
)
async def test_on_asyncpg_a_refused_load_is_recorded_though_never_sent(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    [sql] = await _lazy_load_refused(engine, session)
    assert "FROM post" in sql


@pytest.mark.parametrize("pool", POOLS, ids=pool_ids)
async def test_after_a_commit_a_refused_load_is_recorded_only_on_an_open_connection(
    tmp_path: Path, pool: str
) -> None:
    async with (
        engine_with_pool(pool, tmp_path) as engine,
        async_sessionmaker(engine)() as session,  # expire_on_commit=True
    ):
        ada = await session.scalar(select(User).where(User.name == "ada"))
        await session.commit()  # the session gives its connection back
        async with pool_as(engine, pool) as checkout:
            with (
                record_statements(engine) as log,
                expect_missing_greenlet(
                    engine,
                    opens_connection=checkout.opens_connection,
                    pings=checkout.pings,
                ) as failed,
            ):
                ada.name  # noqa: B018
    recorded = [statement.sql for statement in log.statements]
    refused_before_the_event = (
        engine.dialect.driver == "aiosqlite" and sqlalchemy_line() == "2.1"
    )
    if checkout.does_io or refused_before_the_event:
        # Refused while connecting or pinging, before any statement existed (or,
        # on 2.1's aiosqlite, before the cursor).
        assert recorded == []
    else:
        # The pool handed back an idle connection: the event saw the reload.
        [sql] = recorded
        assert "FROM user_account" in sql
    assert failed.log.count == 0  # and nothing reached the database


async def test_begin_and_commit_are_not_recorded(engine: AsyncEngine) -> None:
    with record_statements(engine) as log:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(text("SELECT 1"))
    assert [statement.sql for statement in log.statements] == ["SELECT 1"]


#: What a loader's SELECT begins with on 2.0, which labels each column.
LABELLED = {
    "lazy": "SELECT post.id AS post_id, post.title AS post_title, "
    "post.author_id AS post_author_id \nFROM post",
    "expired": "SELECT user_account.id AS user_account_id, "
    "user_account.name AS user_account_name \nFROM user_account",
}


async def _loader_sql(engine: AsyncEngine, session: AsyncSession, load: str) -> str:
    """The one statement a lazy load, an expired reload or a refresh sends."""
    ada = await session.scalar(select(User).where(User.name == "ada"))
    if load == "expired":
        session.expire(ada)
    with record_statements(engine) as log:
        if load == "lazy":
            await ada.awaitable_attrs.posts
        elif load == "expired":
            await ada.awaitable_attrs.name
        else:
            await session.refresh(ada)
    [statement] = log.statements
    return statement.sql


LOADS = pytest.mark.parametrize("load", LABELLED, ids=lambda load: f"load={load}")


@pytest.mark.only_on(
    sqlalchemy="2.1", reason="2.1 sends a loader's columns without labels"
)
@LOADS
async def test_a_lazy_load_sends_its_columns_without_labels(
    engine: AsyncEngine, session: AsyncSession, load: str
) -> None:
    sql = await _loader_sql(engine, session, load)
    assert sql.startswith(without_labels(LABELLED[load]))


@pytest.mark.only_on(
    sqlalchemy="2.0", reason="2.0 labels each column of a loader's SELECT"
)
@LOADS
async def test_a_lazy_load_labels_its_columns_on_20(
    engine: AsyncEngine, session: AsyncSession, load: str
) -> None:
    sql = await _loader_sql(engine, session, load)
    assert sql.startswith(LABELLED[load])


async def test_a_refresh_sends_its_columns_without_labels_on_both_lines(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    sql = await _loader_sql(engine, session, "refresh")
    assert sql.startswith("SELECT user_account.id, user_account.name \nFROM")
