"""What the event loop does while a query is in flight, and where the ORM fits in.

The examples need two queries that take long enough to watch: a recursive CTE that
counts to a few hundred thousand inside SQLite. They run on a database file, so the
engine pools separate connections (one aiosqlite thread each) and two sessions can
really have a query in flight at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from snippets.models import User

# region slow_query
SLOW_COUNT = text(
    "WITH RECURSIVE numbers(n) AS "
    "(SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < :upto) "
    "SELECT count(*) FROM numbers"
).bindparams(upto=300_000)
# endregion slow_query


@contextmanager
def _timeline(engine: AsyncEngine) -> Iterator[list[str]]:
    """'query N sent' / 'query N returned', in the order the engine saw them."""
    events: list[str] = []
    numbers: dict[int, int] = {}

    def number_of(conn) -> int:
        return numbers.setdefault(id(conn), len(numbers) + 1)

    def sent(conn, *args) -> None:
        events.append(f"query {number_of(conn)} sent")

    def returned(conn, *args) -> None:
        events.append(f"query {number_of(conn)} returned")

    event.listen(engine.sync_engine, "before_cursor_execute", sent)
    event.listen(engine.sync_engine, "after_cursor_execute", returned)
    try:
        yield events
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", sent)
        event.remove(engine.sync_engine, "after_cursor_execute", returned)


# region overlap
async def count_in_own_session(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(SLOW_COUNT)


async def two_sessions_at_once(file_engine: AsyncEngine) -> list[str]:
    sessions = async_sessionmaker(file_engine, expire_on_commit=False)
    with _timeline(file_engine) as timeline:
        # While the first query waits for SQLite, the loop runs the second task.
        await asyncio.gather(
            count_in_own_session(sessions), count_in_own_session(sessions)
        )
    return timeline


# endregion overlap


# region heartbeat
async def heartbeats_during(work: Callable[[], Awaitable[object]]) -> int:
    """How often a 1 ms heartbeat task got to run while `work` ran."""
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.001)
            beats += 1

    ticker = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # let the heartbeat start
    before = beats
    await work()
    during = beats - before
    ticker.cancel()
    return during


# endregion heartbeat


# region stall
async def awaited_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(SLOW_COUNT)


async def blocking_count(sync_engine: Engine) -> int:
    # Broken: a sync driver inside a coroutine. Nothing here awaits, so the
    # event loop, and every other task on it, waits for SQLite too.
    with sync_engine.connect() as conn:
        return conn.scalar(SLOW_COUNT)


async def heartbeats_awaited_vs_blocking(file_engine: AsyncEngine) -> dict[str, int]:
    sync_engine = create_engine(file_engine.url.set(drivername="sqlite"))
    try:
        return {
            "awaited query": await heartbeats_during(
                lambda: awaited_count(file_engine)
            ),
            "blocking query": await heartbeats_during(
                lambda: blocking_count(sync_engine)
            ),
        }
    finally:
        sync_engine.dispose()


# endregion stall


# region bridge_run_sync
def ada_post_titles(sync_session: Session) -> list[str]:
    ada = sync_session.scalars(select(User).where(User.name == "ada")).one()
    return [post.title for post in ada.posts]  # an ordinary lazy load


async def ada_post_titles_via_run_sync(session: AsyncSession) -> list[str]:
    # Inside run_sync, the lazy load's driver call is awaited for it.
    return await session.run_sync(ada_post_titles)


# endregion bridge_run_sync


# region bridge_awaitable_attrs
async def ada_post_titles_awaited(session: AsyncSession) -> list[str]:
    ada = await session.scalar(select(User).where(User.name == "ada"))
    # The same lazy load, started by an await: it is allowed, and visible.
    posts = await ada.awaitable_attrs.posts
    return [post.title for post in posts]


# endregion bridge_awaitable_attrs
