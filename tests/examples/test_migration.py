import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import Result
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncResult, AsyncSession
from sqlalchemy.orm import Query, Session

from guide_runtime.capture import capture
from guide_runtime.database import fresh_sync_database
from snippets import migration
from snippets.counting_statements import record_statements
from snippets.migration import (
    create_tables,
    first_user,
    first_user_fetching_all,
    greenlet_requirement,
    legacy_first_user,
    legacy_names_starting_with_a,
    legacy_post_counts,
    make_async_session_factory,
    make_sync_session_factory,
    names_starting_with,
    names_starting_with_a,
    post_counts,
    post_counts_in_sql,
    post_counts_strict,
    post_counts_strict_unplanned,
    post_counts_via_run_sync,
    rows_and_objects,
    sync_names_starting_with_a,
    sync_rows_and_objects,
    sync_unwrapping,
    unwrapping,
)
from snippets.models import Base, User

ON_PYSQLITE = pytest.mark.only_on(
    engine="sqlite",
    reason="the sync (before) form runs on pysqlite; the suite installs no sync "
    "PostgreSQL driver",
)


POST_COUNTS = {"ada": 2, "grace": 1, "linus": 0}


@pytest.fixture
def sync_engine() -> Iterator[Engine]:
    """A pysqlite database with the sample data: the 'before' of the migration."""
    with fresh_sync_database() as engine:
        yield engine


@pytest.fixture
def sync_session(sync_engine: Engine) -> Iterator[Session]:
    with Session(sync_engine) as session:
        yield session


@pytest.mark.only_on(
    sqlalchemy="2.1", reason="2.1 declares greenlet for the asyncio extras only"
)
def test_sqlalchemy_declares_greenlet_only_for_the_asyncio_extra(
    record_capture,
) -> None:
    # 2.1 no longer installs greenlet with plain `pip install sqlalchemy`.
    assert greenlet_requirement() == 'greenlet>=1; extra == "asyncio"'
    record_capture("migration-greenlet-requirement", greenlet_requirement())


@pytest.mark.only_on(
    sqlalchemy="2.0",
    reason="2.0 installs greenlet by default on the common platforms",
)
def test_sqlalchemy_installs_greenlet_by_default_on_common_platforms(
    record_capture,
) -> None:
    requirement = greenlet_requirement()
    assert requirement.startswith("greenlet>=1; platform_machine == ")
    assert "extra" not in requirement
    for machine in ("x86_64", "aarch64", "AMD64"):
        assert f'platform_machine == "{machine}"' in requirement
    record_capture("migration-greenlet-requirement", requirement)


def test_session_factories_use_the_sync_and_async_drivers() -> None:
    sync_factory = make_sync_session_factory("sqlite://")
    async_factory = make_async_session_factory("sqlite+aiosqlite://")
    assert sync_factory.kw["bind"].dialect.driver == "pysqlite"
    async_engine = async_factory.kw["bind"]
    assert async_engine.dialect.driver == "aiosqlite"
    assert async_factory.kw["expire_on_commit"] is False
    sync_factory.kw["bind"].dispose()


async def test_create_tables_from_async_code() -> None:
    factory = make_async_session_factory("sqlite+aiosqlite://")
    engine: AsyncEngine = factory.kw["bind"]
    try:
        tables = await create_tables(engine)
    finally:
        await engine.dispose()
    assert set(tables) == set(Base.metadata.tables)


@ON_PYSQLITE
def test_query_still_exists_in_2_1_as_legacy(sync_session: Session) -> None:
    # The 1.x API was not removed: Query is the "legacy" API on 2.1.
    assert isinstance(sync_session.query(User), Query)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and it raises no deprecation warning
        sync_session.query(User).filter(User.id == 1).one()
    assert legacy_names_starting_with_a(sync_session) == ["ada"]


async def test_async_session_has_no_query_method(session: AsyncSession) -> None:
    with pytest.raises(AttributeError, match="'AsyncSession' object has no attribute"):
        session.query(User)  # type: ignore[attr-defined]


@pytest.mark.only_on(
    engine="sqlite",
    reason="the sync form runs on pysqlite; the suite installs no sync PostgreSQL "
    "driver to compare asyncpg with",
)
async def test_select_and_where_send_the_same_sql_sync_and_async(
    sync_engine: Engine, sync_session: Session, engine: AsyncEngine, session
) -> None:
    with record_statements(sync_engine) as sync_log:
        assert sync_names_starting_with_a(sync_session) == ["ada"]
    with record_statements(engine) as async_log:
        assert await names_starting_with_a(session) == ["ada"]
    assert sync_log.count == async_log.count == 1
    assert sync_log.statements[0].sql == async_log.statements[0].sql
    assert "LIKE" in str(names_starting_with("a"))


@ON_PYSQLITE
async def test_unwrapping_gives_the_same_answers_sync_and_async(
    sync_engine: Engine, sync_session: Session, engine: AsyncEngine, session
) -> None:
    expected = {
        "scalars().one()": "ada",
        "scalar_one()": "ada",
        "scalar_one_or_none()": None,
        "scalars().first()": "ada",
        "get()": "grace",
    }
    with record_statements(sync_engine) as sync_log:
        assert sync_unwrapping(sync_session) == expected
    with record_statements(engine) as async_log:
        assert await unwrapping(session) == expected
    assert sync_log.count == async_log.count == 5


async def test_async_execute_returns_a_buffered_result_not_an_async_result(
    session: AsyncSession,
) -> None:
    # The 1.4-era blog post calls it an AsyncResult; on 2.1 AsyncSession.execute()
    # returns an ordinary, fully fetched Result (AsyncResult is what stream() gives).
    result = await session.execute(select(User).order_by(User.id))
    assert isinstance(result, Result)
    assert not isinstance(result, AsyncResult)
    assert type(result).__name__ == "ChunkedIteratorResult"
    # What stream() gives is the AsyncResult, whose rows are fetched by awaiting.
    streamed = await session.stream(select(User).order_by(User.id))
    assert isinstance(streamed, AsyncResult)
    assert [user.name for user in await streamed.scalars().all()] == [
        "ada",
        "grace",
        "linus",
    ]
    # execute()'s rows were all fetched before its await returned: with the
    # session closed and its connection given back, they are still there.
    await session.close()
    assert [user.name for user in result.scalars()] == ["ada", "grace", "linus"]


@ON_PYSQLITE
async def test_columns_give_rows_and_entities_give_objects(
    sync_engine: Engine, sync_session: Session, engine: AsyncEngine, session
) -> None:
    expected = {
        "column rows": [(1, "ada"), (2, "grace"), (3, "linus")],
        "entity row holds": "User",
        "entity row by name": "ada",
    }
    with record_statements(sync_engine) as sync_log:
        assert sync_rows_and_objects(sync_session) == expected
    with record_statements(engine) as async_log:
        assert await rows_and_objects(session) == expected
    assert sync_log.count == async_log.count == 2


@ON_PYSQLITE
def test_legacy_query_first_adds_limit(sync_engine: Engine, sync_session) -> None:
    with record_statements(sync_engine) as log:
        assert legacy_first_user(sync_session) == "ada"
    assert log.count == 1
    assert "LIMIT" in log.statements[0].sql


async def test_first_after_execute_sends_no_limit(engine: AsyncEngine, session):
    with record_statements(engine) as log:
        assert await first_user_fetching_all(session) == "ada"
    assert log.count == 1
    assert "LIMIT" not in log.statements[0].sql


async def test_limit_1_restores_the_limit(engine: AsyncEngine, session) -> None:
    with record_statements(engine) as log:
        assert await first_user(session) == "ada"
    assert log.count == 1
    assert "LIMIT" in log.statements[0].sql
    # SQLite sends LIMIT ? OFFSET ? as (1, 0); PostgreSQL LIMIT $1 as (1,).
    assert log.statements[0].parameters[0] == 1


@ON_PYSQLITE
def test_legacy_code_lazy_loads_on_a_sync_session(sync_engine, sync_session):
    with record_statements(sync_engine) as log:
        assert legacy_post_counts(sync_session) == POST_COUNTS
    assert log.count == 4  # 1 for users + 1 lazy load per user


async def test_run_sync_runs_legacy_code_unchanged_with_its_lazy_loads(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_counts_via_run_sync(session) == POST_COUNTS
    assert log.count == 4  # the N+1 came along


async def test_upgraded_code_loads_posts_in_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_counts(session) == POST_COUNTS
    assert log.count == 2


async def test_raiseload_accepts_planned_loads(engine: AsyncEngine, session) -> None:
    with record_statements(engine) as log:
        assert await post_counts_strict(session) == POST_COUNTS
    assert log.count == 2


async def test_raiseload_refuses_unplanned_loads_before_any_io(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with (
        record_statements(engine) as log,
        pytest.raises(InvalidRequestError) as raised,
    ):
        await post_counts_strict_unplanned(session)
    assert str(raised.value) == "'User.posts' is not available due to lazy='raise'"
    assert log.count == 1  # no lazy load was attempted, so no warning either


async def test_counting_in_sql_sends_one_statement(engine: AsyncEngine, session):
    with record_statements(engine) as log:
        assert await post_counts_in_sql(session) == POST_COUNTS
    assert log.count == 1


@ON_PYSQLITE
def test_sync_examples_are_captured_on_pysqlite() -> None:
    captured = capture("migration:legacy_first_user")
    assert captured.error is None
    assert captured.result == "ada"
    assert "LIMIT" in captured.statements.statements[0].sql
    with pytest.raises(TypeError, match="sample data only"):
        capture("migration:legacy_first_user", seed="models:sample_users")
    assert migration.__doc__
