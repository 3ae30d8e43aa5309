"""SQLAlchemy 2.1 facts the rule pages state in prose, checked here.

Rule pages also describe behaviour in words, beyond their tested examples; these
tests keep the words true on the pinned release. Mappings live on their own
MetaData, so they never join the shared model's tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from sqlalchemy import FetchedValue, ForeignKey, String, inspect, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    DynamicMapped,
    Mapped,
    deferred,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.exc import DetachedInstanceError

from snippets.counting_statements import record_statements
from snippets.models import User
from tests.support import expect_missing_greenlet


class FactBase(AsyncAttrs, DeclarativeBase):
    """Separate metadata: these tables exist only in this module's databases."""


class FactStamp(FactBase):
    __tablename__ = "fact_stamp"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    created: Mapped[str] = mapped_column(server_default=text("'created'"))
    touched: Mapped[str] = mapped_column(
        server_default=text("'new'"), server_onupdate=FetchedValue()
    )
    notes: Mapped[str] = deferred(mapped_column(String(50), default="none"))
    items: DynamicMapped[FactItem] = relationship(lazy="dynamic")


class FactEagerStamp(FactBase):
    """The same columns, with the mapper told to fetch generated values in flush."""

    __tablename__ = "fact_eager_stamp"
    __mapper_args__: ClassVar = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    touched: Mapped[str] = mapped_column(
        server_default=text("'new'"), server_onupdate=FetchedValue()
    )
    notes: Mapped[str] = deferred(
        mapped_column(String(50), default="none"), raiseload=True
    )
    items: Mapped[list[FactItem]] = relationship(lazy="raise")


class FactItem(FactBase):
    __tablename__ = "fact_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    stamp_id: Mapped[int] = mapped_column(ForeignKey("fact_stamp.id"))
    eager_stamp_id: Mapped[int | None] = mapped_column(
        ForeignKey("fact_eager_stamp.id")
    )


ON_A_PRIVATE_SQLITE = pytest.mark.only_on(
    engine="sqlite",
    reason="these facts use a private SQLite with AFTER triggers; the PostgreSQL "
    "trigger facts are in tests/test_server_generated_values.py",
)


@pytest.fixture
async def fact_session():
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(FactBase.metadata.create_all)
        # The database, not the ORM, changes `touched` on every rename.
        await conn.execute(
            text(
                "CREATE TRIGGER fact_touch AFTER UPDATE OF name ON fact_stamp "
                "BEGIN UPDATE fact_stamp SET touched = 'updated' WHERE id = new.id; END"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER fact_eager_touch AFTER UPDATE OF name "
                "ON fact_eager_stamp BEGIN UPDATE fact_eager_stamp "
                "SET touched = 'updated' WHERE id = new.id; END"
            )
        )
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()


@pytest.fixture
async def fact_session_here(
    empty_engine: AsyncEngine,
) -> AsyncIterator[AsyncSession]:
    """The same tables without triggers, on this configuration's database."""
    async with empty_engine.begin() as conn:
        await conn.run_sync(FactBase.metadata.create_all)
    async with async_sessionmaker(empty_engine, expire_on_commit=False)() as session:
        yield session


async def test_eager_defaults_is_auto_and_fetches_insert_defaults(
    fact_session_here: AsyncSession,
) -> None:
    fact_session = fact_session_here
    assert inspect(FactStamp).eager_defaults == "auto"  # 1.4 defaulted to False
    stamp = FactStamp(name="a")
    fact_session.add(stamp)
    await fact_session.flush()
    assert stamp.created == "created"  # came back with the INSERT (RETURNING)


@ON_A_PRIVATE_SQLITE
async def test_values_generated_on_update_are_expired_not_fetched(
    fact_session: AsyncSession,
) -> None:
    stamp = FactStamp(name="a")
    fact_session.add(stamp)
    await fact_session.flush()
    stamp.name = "b"
    await fact_session.flush()
    assert "touched" in inspect(stamp).unloaded
    with expect_missing_greenlet(fact_session.bind):
        _ = stamp.touched
    await fact_session.refresh(stamp, ["touched"])
    assert stamp.touched == "updated"


async def test_expire_turns_the_next_read_into_implicit_io(session) -> None:
    user = await session.get(User, 1)
    session.expire(user, ["name"])
    with expect_missing_greenlet(session.bind):
        _ = user.name


async def test_deferred_column_read_on_access_fails(
    fact_session_here: AsyncSession,
) -> None:
    fact_session = fact_session_here
    fact_session.add(FactStamp(name="a"))
    await fact_session.commit()
    fact_session.expunge_all()
    stamp = await fact_session.scalar(select(FactStamp))
    assert "notes" in inspect(stamp).unloaded
    with expect_missing_greenlet(fact_session.bind):
        _ = stamp.notes


async def test_dynamic_relationship_query_fails_outside_run_sync(
    fact_session_here: AsyncSession,
) -> None:
    fact_session = fact_session_here
    fact_session.add(FactStamp(name="a"))
    await fact_session.commit()
    stamp = await fact_session.scalar(select(FactStamp))
    with expect_missing_greenlet(fact_session.bind):
        stamp.items.all()
    count = await fact_session.run_sync(lambda _: stamp.items.count())
    assert count == 0


@ON_A_PRIVATE_SQLITE
async def test_eager_defaults_true_fetches_update_values_with_returning(
    fact_session: AsyncSession,
) -> None:
    stamp = FactEagerStamp(name="a")
    fact_session.add(stamp)
    await fact_session.flush()
    stamp.name = "b"
    engine = fact_session.bind
    with record_statements(engine) as log:
        await fact_session.flush()
    [update] = log.statements
    assert update.sql.endswith("RETURNING touched")
    assert "touched" not in inspect(stamp).unloaded  # no implicit load left
    # SQLite's RETURNING does not see what an AFTER trigger changed: the fetched
    # value is the one before the trigger ran. Only a refresh reads the trigger's.
    assert stamp.touched == "new"
    await fact_session.refresh(stamp, ["touched"])
    assert stamp.touched == "updated"


async def test_raise_strategies_fail_without_sending_sql(
    fact_session_here: AsyncSession,
) -> None:
    fact_session = fact_session_here
    fact_session.add(FactEagerStamp(name="a"))
    await fact_session.commit()
    fact_session.expunge_all()
    stamp = await fact_session.scalar(select(FactEagerStamp))
    with record_statements(fact_session.bind) as log:
        with pytest.raises(InvalidRequestError, match=r"'FactEagerStamp\.items' is"):
            _ = stamp.items
        with pytest.raises(InvalidRequestError, match=r"'FactEagerStamp\.notes' is"):
            _ = stamp.notes
    assert log.count == 0


async def test_the_default_expire_on_commit_breaks_reads_after_commit(
    engine,
) -> None:
    # IO201: the default session expires everything on commit.
    async with async_sessionmaker(engine)() as session:
        user = await session.get(User, 1)
        await session.commit()
        assert "name" in inspect(user).expired_attributes
        with expect_missing_greenlet(engine):
            _ = user.name


async def test_a_closed_session_cannot_load_for_a_serializer(engine) -> None:
    # IO103: after the session is gone, an unloaded relationship cannot load at all.
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        user = await session.get(User, 1)
    with pytest.raises(DetachedInstanceError):
        _ = user.posts


async def test_lazy_loads_work_inside_run_sync(engine, session) -> None:
    # IO301: run_sync gives sync code a session that can wait for the database.
    def post_titles(sync_session) -> list[str]:
        return [post.title for post in sync_session.get(User, 1).posts]

    with record_statements(engine) as log:
        titles = await session.run_sync(post_titles)
    assert titles == ["Notes on engines", "On sessions"]
    assert log.count == 2  # the user, then the lazy load of its posts


def test_asyncio_debug_mode_logs_a_call_that_blocks_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """IO302's page: debug mode names a step that held the loop too long."""

    async def sync_driver_call() -> None:
        time.sleep(0.02)  # noqa: ASYNC251 - the blocking call this test detects

    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    assert loop.slow_callback_duration == 0.1  # the default threshold, in seconds
    loop.slow_callback_duration = 0.01  # keeps this test fast
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            loop.run_until_complete(sync_driver_call())
    finally:
        loop.close()
    assert any(" took " in record.getMessage() for record in caplog.records)
