from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from guide_runtime.capture import capture
from guide_runtime.database import fresh_database, fresh_sync_database
from snippets.concepts import (
    SLOW_COUNT,
    ada_post_titles,
    ada_post_titles_awaited,
    ada_post_titles_via_run_sync,
    awaited_count,
    blocking_count,
    count_in_own_session,
    heartbeats_awaited_vs_blocking,
    heartbeats_during,
    two_sessions_at_once,
)
from snippets.counting_statements import record_statements

ON_A_SQLITE_FILE = pytest.mark.only_on(
    engine="sqlite",
    reason="shown with a SQLite file and a blocking pysqlite call, whatever the "
    "suite's database; the event-loop facts do not depend on the engine",
)


ADA_TITLES = ["Notes on engines", "On sessions"]


@pytest.fixture
async def file_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The sample data in a database file: the engine pools real connections."""
    async with fresh_database(url=f"sqlite+aiosqlite:///{tmp_path}/guide.db") as e:
        yield e


@ON_A_SQLITE_FILE
async def test_slow_query_counts_to_its_bound_limit(file_engine: AsyncEngine) -> None:
    assert await awaited_count(file_engine) == 300_000
    assert SLOW_COUNT.compile().params == {"upto": 300_000}


@ON_A_SQLITE_FILE
async def test_two_sessions_queries_overlap(file_engine: AsyncEngine) -> None:
    with record_statements(file_engine) as log:
        timeline = await two_sessions_at_once(file_engine)
    assert log.count == 2
    # Both queries were sent before either returned: they were in flight together.
    assert timeline[:2] == ["query 1 sent", "query 2 sent"]
    assert sorted(timeline[2:]) == ["query 1 returned", "query 2 returned"]


@ON_A_SQLITE_FILE
async def test_one_session_alone_sends_then_returns(file_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(file_engine)
    with record_statements(file_engine) as log:
        assert await count_in_own_session(sessions) == 300_000
    assert log.count == 1


@ON_A_SQLITE_FILE
async def test_blocking_call_stalls_every_other_task(file_engine: AsyncEngine):
    beats = await heartbeats_awaited_vs_blocking(file_engine)
    # While the query was awaited, the heartbeat task kept running...
    assert beats["awaited query"] >= 3
    # ...while the sync driver ran, it did not run once.
    assert beats["blocking query"] == 0


@ON_A_SQLITE_FILE
async def test_heartbeats_during_measures_other_tasks(file_engine: AsyncEngine):
    sync_engine = create_engine(file_engine.url.set(drivername="sqlite"))
    try:
        assert await heartbeats_during(lambda: blocking_count(sync_engine)) == 0
    finally:
        sync_engine.dispose()


@ON_A_SQLITE_FILE
async def test_run_sync_does_not_make_other_blocking_io_async(
    file_engine: AsyncEngine, session: AsyncSession
) -> None:
    # The bridge awaits SQLAlchemy's own driver calls only: a sync driver used
    # inside run_sync still holds the event loop.
    sync_engine = create_engine(file_engine.url.set(drivername="sqlite"))

    def count_with_sync_driver(sync_session: Session) -> int:
        with sync_engine.connect() as conn:
            return conn.scalar(SLOW_COUNT)

    try:
        beats = await heartbeats_during(
            lambda: session.run_sync(count_with_sync_driver)
        )
    finally:
        sync_engine.dispose()
    assert beats == 0


@ON_A_SQLITE_FILE
def test_legacy_lazy_load_works_on_a_sync_session() -> None:
    with (
        fresh_sync_database() as engine,
        Session(engine) as sync_session,
        record_statements(engine) as log,
    ):
        assert ada_post_titles(sync_session) == ADA_TITLES
    assert log.count == 2


async def test_run_sync_lets_the_lazy_load_run(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await ada_post_titles_via_run_sync(session) == ADA_TITLES
    assert log.count == 2


async def test_awaitable_attrs_load_inside_an_await(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await ada_post_titles_awaited(session) == ADA_TITLES
    assert log.count == 2


@ON_A_SQLITE_FILE
def test_the_harness_gives_file_engine_a_pooled_file_database() -> None:
    captured = capture("concepts:two_sessions_at_once")
    assert captured.error is None
    assert captured.statements.count == 2
    assert captured.result[:2] == ["query 1 sent", "query 2 sent"]


def test_the_diagram_is_shipped_and_offline(built_site: Path) -> None:
    page = (built_site / "guides" / "concepts.html").read_text()
    assert "concepts-bridge.svg" in page
    [svg] = list(built_site.rglob("concepts-bridge.svg"))
    assert "http://www.w3.org/2000/svg" in svg.read_text()
    assert "greenlet_spawn" in svg.read_text()
    for remote in ('href="http', 'src="http', "@import"):
        assert remote not in svg.read_text()
