import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from snippets.counting_statements import record_statements
from snippets.models import User
from snippets.run_sync import (
    create_reporting_tables,
    legacy_report,
    legacy_report_called_directly,
    legacy_report_preloaded,
    legacy_report_table,
    post_titles_by_author_legacy,
    post_titles_by_author_preloaded,
    rename_user,
    rename_user_legacy,
    reporting_metadata,
)
from tests.support import (
    POOLS,
    engine_with_pool,
    expect_missing_greenlet,
    pool_as,
    pool_ids,
)

EXPECTED = {
    "ada": ["Notes on engines", "On sessions"],
    "grace": ["Compilers"],
    "linus": [],
}


async def test_legacy_code_outside_run_sync_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await legacy_report_called_directly(session)
    # The harness asserts this line's shape (wrapped on 2.1, bare on 2.0).
    assert "FROM user_account" in failed.attempted  # the very first query
    assert failed.log.count == 0
    # The same function is fine once run_sync provides the context.
    assert await session.run_sync(post_titles_by_author_legacy) == EXPECTED


@pytest.mark.parametrize("pool", POOLS, ids=pool_ids)
async def test_legacy_code_outside_run_sync_has_the_shape_of_its_checkout(
    tmp_path: Path, pool: str
) -> None:
    async with engine_with_pool(pool, tmp_path) as engine:
        factory = async_sessionmaker(engine)
        # A new session has no connection of its own: the call's first query asks
        # the pool for one, in the state `pool` names.
        async with factory() as session, pool_as(engine, pool) as checkout:
            with expect_missing_greenlet(
                engine,
                opens_connection=checkout.opens_connection,
                pings=checkout.pings,
            ) as failed:
                await legacy_report_called_directly(session)
        assert failed.log.count == 0
        # A session that already holds its connection (its transaction is open)
        # runs the call there, whatever the pool: no checkout, no I/O before it.
        async with factory() as session:
            await session.execute(select(User.id))
            with expect_missing_greenlet(engine) as failed:
                await legacy_report_called_directly(session)
        assert failed.log.count == 0


async def test_run_sync_works_but_sends_one_statement_per_user(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await legacy_report(session) == EXPECTED
    assert log.count == 1 + 3  # the users, then one lazy load per user
    assert all(
        re.search(r"WHERE \S+ = post\.author_id", s.sql) for s in log.statements[1:]
    )


@pytest.mark.parametrize("extra_users", [0, 5, 20], ids=lambda n: f"users={3 + n}")
async def test_run_sync_lazy_loads_grow_with_n(
    engine: AsyncEngine, session: AsyncSession, extra_users: int
) -> None:
    session.add_all(User(name=f"user{i}", posts=[]) for i in range(extra_users))
    await session.commit()
    session.expunge_all()  # the new users' empty lists would answer from memory
    users = 3 + extra_users
    with record_statements(engine) as lazy:
        report = await legacy_report(session)
    session.expunge_all()
    with record_statements(engine) as eager:
        assert await legacy_report_preloaded(session) == report
    assert len(report) == users
    assert lazy.count == 1 + users
    assert eager.count == 2


async def test_preloaded_legacy_code_sends_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await legacy_report_preloaded(session) == EXPECTED
    assert log.count == 2
    session.expunge_all()
    with record_statements(engine) as direct:
        await session.run_sync(post_titles_by_author_preloaded)
    assert direct.count == 2


async def test_run_sync_passes_arguments(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await rename_user(session) == "torvalds"
    assert log.count == 2  # the get() and the UPDATE
    assert log.statements[1].sql.startswith("UPDATE user_account SET name")
    with pytest.raises(LookupError, match="no user 99"):
        await session.run_sync(rename_user_legacy, 99, "nobody")


async def test_create_all_through_run_sync(empty_engine: AsyncEngine) -> None:
    with record_statements(empty_engine) as log:
        await create_reporting_tables(empty_engine)
    # Existence checks (SQLite: two PRAGMAs; PostgreSQL: one catalog query), then
    # the CREATE TABLE: all through the one awaited call.
    *checks, create = (s.sql.strip() for s in log.statements)
    assert checks and not any(check.startswith("CREATE") for check in checks)
    assert create.startswith("CREATE TABLE legacy_report")
    async with empty_engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert legacy_report_table.name in names
    assert set(reporting_metadata.tables) == {"legacy_report"}
    # Running it again creates nothing: create_all checks first.
    with record_statements(empty_engine) as again:
        await create_reporting_tables(empty_engine)
    assert not any("CREATE" in s.sql for s in again.statements)
