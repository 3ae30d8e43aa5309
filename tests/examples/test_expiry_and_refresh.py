import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from snippets.counting_statements import record_statements
from snippets.expiry_and_refresh import (
    _query_again_without_populate_existing,
    load_posts_by_refresh,
    make_session_factory,
    read_after_expire,
    read_after_expire_all,
    read_after_rollback,
    refresh_user_name,
    reload_users_in_one_query,
    reload_whole_report,
    reload_whole_user,
    rename_user,
    rename_user_default_session,
)
from snippets.models import User
from tests.support import expect_missing_greenlet, without_labels


async def test_default_session_expires_on_commit(engine: AsyncEngine) -> None:
    with expect_missing_greenlet(engine) as failed:
        await rename_user_default_session(engine)
    assert "SELECT user_account.id, user_account.name" in without_labels(
        failed.attempted
    )
    assert failed.log.count == 2  # the SELECT and the UPDATE; the reload never got out


async def test_expire_on_commit_false_keeps_the_values(engine: AsyncEngine) -> None:
    assert make_session_factory(engine).kw["expire_on_commit"] is False
    with record_statements(engine) as log:
        assert await rename_user(engine) == "Ada Lovelace"
    assert log.count == 2  # SELECT and UPDATE; reading after commit sent nothing
    assert log.statements[1].sql.startswith("UPDATE user_account")


async def test_expire_then_read_fails(engine: AsyncEngine, session: AsyncSession):
    with expect_missing_greenlet(engine) as failed:
        await read_after_expire(session)
    assert failed.log.count == 1


async def test_expire_all_then_read_fails(engine: AsyncEngine, session: AsyncSession):
    with expect_missing_greenlet(engine) as failed:
        await read_after_expire_all(session)
    assert failed.log.count == 1


async def test_rollback_expires_even_without_expire_on_commit(
    engine: AsyncEngine,
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await read_after_rollback(engine)
    assert "FROM user_account" in failed.attempted
    assert failed.log.count == 1  # the SELECT; the reload never got out


async def test_expire_on_commit_false_keeps_a_row_changed_behind_its_back(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.scalar(select(User).where(User.name == "ada"))
    # An UPDATE the session does not apply to its objects, as from another process.
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(name="changed elsewhere")
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    with record_statements(engine) as log:
        assert user.name == "ada"  # the value in memory, not the row's
    assert log.count == 0


@pytest.mark.seed("deferred_columns:_add_reports")
async def test_refresh_without_names_leaves_deferred_columns_unloaded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await reload_whole_report(session)
    assert "report.body" in failed.attempted
    assert failed.log.count == 2  # the query and the refresh, neither with `body`
    assert all("report.body" not in s.sql for s in failed.log.statements)


async def test_refresh_without_names_reloads_columns_and_eager_loads(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        name, titles = await reload_whole_user(session)
    assert (name, titles) == ("ada", ["Notes on engines", "On sessions"])
    assert log.count == 4  # query + selectinload, then the same two again
    assert "FROM post" in log.statements[3].sql


async def test_refresh_without_names_leaves_lazy_relationships_unloaded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.scalar(select(User).where(User.name == "ada"))
    with record_statements(engine) as log:
        await session.refresh(user)
    assert log.count == 1
    assert "posts" not in user.__dict__
    with expect_missing_greenlet(engine):
        user.posts  # noqa: B018


async def test_refresh_named_column_sends_one_narrow_select(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await refresh_user_name(session) == "Ada Lovelace"
    assert log.count == 3  # SELECT, UPDATE, and the refresh
    assert log.statements[2].sql.startswith("SELECT user_account.name \nFROM")


async def test_refresh_named_lazy_relationship_loads_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await load_posts_by_refresh(session)
    assert titles == ["Notes on engines", "On sessions"]
    # The user query, then refresh's two: the row itself, and the posts.
    assert log.count == 3
    assert "FROM post" in log.statements[2].sql


async def _rename_elsewhere_then_refresh(
    factory: async_sessionmaker[AsyncSession],
) -> tuple[str, str]:
    """Another transaction renames ada; (name in memory, name after a refresh)."""
    async with factory() as reader, factory() as writer:
        ada = await reader.scalar(select(User).where(User.name == "ada"))
        renamed = await writer.get(User, ada.id)
        renamed.name = "Countess"
        await writer.commit()
        in_memory = ada.name
        await reader.refresh(ada, ["name"])
        return in_memory, ada.name


async def test_another_transactions_change_shows_only_after_a_reload(
    engine: AsyncEngine,
) -> None:
    # The reader's transaction is still open when it refreshes.
    factory = make_session_factory(engine)
    assert await _rename_elsewhere_then_refresh(factory) == ("ada", "Countess")


@pytest.mark.only_on(
    engine="postgresql",
    reason="SQLite has no REPEATABLE READ level; PostgreSQL's default is READ "
    "COMMITTED, and REPEATABLE READ keeps the transaction's first snapshot",
)
async def test_under_repeatable_read_the_refresh_sees_the_old_row(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        assert await conn.get_isolation_level() == "READ COMMITTED"
    snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
    factory = make_session_factory(snapshot)
    assert await _rename_elsewhere_then_refresh(factory) == ("ada", "ada")


async def test_populate_existing_reloads_every_object_in_one_select(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        names = await reload_users_in_one_query(session)
    assert names and all(name.endswith(" (renamed)") for name in names)
    assert log.count == 3  # SELECT, UPDATE, and the one reloading SELECT


async def test_the_same_query_again_keeps_the_objects_it_holds(
    session: AsyncSession,
) -> None:
    names = await _query_again_without_populate_existing(session)
    assert names and not any(name.endswith(" (renamed)") for name in names)
