"""The guard's cause for each load it did not name right before, on every engine.

A polymorphic load's unfetched subclass column, an attribute ``refresh()``
expired and did not load, a load inside a session event handler, an expiry
nobody the guard knows made; and a ``DetachedInstanceError``, named with the
attribute and what detached the object. Each runs on the suite's database
(SQLite, or a schema of its own on PostgreSQL) and on both SQLAlchemy lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from sqlalchemy import ForeignKey, event, select
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    load_only,
    make_transient,
    make_transient_to_detached,
    mapped_column,
    relationship,
    selectin_polymorphic,
    selectinload,
)
from sqlalchemy.orm.exc import DetachedInstanceError

from guide_runtime.database import private_engine
from implicit_io.guard import ImplicitIOError, ImplicitIOGuard, explain_detached


class MoreBase(AsyncAttrs, DeclarativeBase):
    pass


class Shelf(MoreBase):
    __tablename__ = "more_shelf"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str]
    items: Mapped[list[Item]] = relationship(back_populates="shelf", lazy="select")


class Item(MoreBase):
    """Joined-table inheritance: each subclass's columns live in its own table."""

    __tablename__ = "more_item"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": "kind",
        "polymorphic_identity": "item",
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str]
    title: Mapped[str]
    shelf_id: Mapped[int] = mapped_column(ForeignKey("more_shelf.id"))
    shelf: Mapped[Shelf] = relationship(back_populates="items", lazy="select")


class Book(Item):
    __tablename__ = "more_book"
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "book"}

    id: Mapped[int] = mapped_column(ForeignKey("more_item.id"), primary_key=True)
    pages: Mapped[int]


class Record(Item):
    __tablename__ = "more_record"
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "record"}

    id: Mapped[int] = mapped_column(ForeignKey("more_item.id"), primary_key=True)
    minutes: Mapped[int]


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with private_engine() as engine:
        async with engine.begin() as conn:
            await conn.run_sync(MoreBase.metadata.create_all)
        async with AsyncSession(engine) as session:
            shelf = Shelf(label="new")
            shelf.items = [Book(title="Notes", pages=120)]
            shelf.items.append(Record(title="Live", minutes=40))
            session.add(shelf)
            await session.commit()
        yield engine


async def _shelf(session: AsyncSession) -> Shelf:
    return await session.scalar(select(Shelf).options(selectinload(Shelf.items)))


# region scenarios
async def polymorphic_base_query(session: AsyncSession) -> object:
    # A query for the base class joins no subclass table.
    book = await session.scalar(select(Item).where(Item.kind == "book"))
    return book.pages


async def selectin_polymorphic_of_another_subclass(session: AsyncSession) -> object:
    query = select(Item).options(selectin_polymorphic(Item, [Record]))
    pages = []
    for item in await session.scalars(query.order_by(Item.id)):
        if isinstance(item, Book):
            pages.append(item.pages)
    return pages


async def refresh_expires_a_loaded_relationship(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf))
    await shelf.awaitable_attrs.items  # loaded, explicitly
    # refresh() expires every attribute and reloads what the query that loaded
    # the object loaded: its columns, not `items`.
    await session.refresh(shelf)
    return shelf.items


async def before_flush_handler_reads_a_relationship(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf))
    shelf.label = "renamed"
    await session.flush()  # the handler below runs inside it
    return shelf.label


async def expired_by_a_call_the_guard_does_not_know(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf).options(load_only(Shelf.id)))
    session.expunge(shelf)
    make_transient(shelf)
    make_transient_to_detached(shelf)  # expires what was not loaded: `label`
    session.add(shelf)
    return shelf.label


# endregion scenarios


def _count_items(session: Session, flush_context: object, instances: object) -> None:
    """A before_flush handler that reads a relationship nobody loaded."""
    for shelf in session.dirty:
        if isinstance(shelf, Shelf):
            len(shelf.items)


Scenario = Callable[[AsyncSession], Awaitable[object]]
CAUSES: dict[str, tuple[Scenario, str, str, str]] = {
    # label: (scenario, rule, attribute, what the kind says)
    "a base-class query leaves the subclass table unfetched": (
        polymorphic_base_query,
        "IO102",
        "Book.pages",
        "column of Book's table, not fetched by the polymorphic load",
    ),
    "selectin_polymorphic() of another subclass": (
        selectin_polymorphic_of_another_subclass,
        "IO102",
        "Book.pages",
        "column of Book's table, not fetched by the polymorphic load",
    ),
    "refresh() expires a relationship it does not load again": (
        refresh_expires_a_loaded_relationship,
        "IO202",
        "Shelf.items",
        "expired by refresh() and not loaded by it",
    ),
    "a before_flush handler reads an unloaded relationship": (
        before_flush_handler_reads_a_relationship,
        "IO102",
        "Shelf.items",
        "implicit lazy load of a relationship, inside a before_flush handler "
        "(tests/toolkit/test_guard_more_causes.py:",
    ),
    "an expiry the guard did not see is said to be unknown": (
        expired_by_a_call_the_guard_does_not_know,
        "IO202",
        "Shelf.label",
        "attribute expired, by a call the guard does not know",
    ),
}


@pytest.mark.parametrize("label", CAUSES)
async def test_the_guard_names_the_cause(engine: AsyncEngine, label: str) -> None:
    scenario, rule, attribute, kind = CAUSES[label]
    factory = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(factory)
    handler = scenario is before_flush_handler_reads_a_relationship
    async with factory() as session:
        if handler:
            event.listen(session.sync_session, "before_flush", _count_items)
        with pytest.raises(ImplicitIOError) as raised:
            await scenario(session)
    error = raised.value
    assert (error.rule, error.attribute) == (rule, attribute), str(error)
    assert kind in error.load.kind, error.load.kind
    assert "expire()" not in error.load.kind
    if not handler:
        assert error.call_site.endswith(f" in {scenario.__name__}")


async def test_a_handler_load_is_reported_in_track_mode_too(engine: AsyncEngine):
    factory = async_sessionmaker(engine, expire_on_commit=False)
    loads = []
    ImplicitIOGuard("track", on_load=loads.append).install(factory)
    async with factory() as session:
        event.listen(session.sync_session, "before_flush", _count_items)
        assert await before_flush_handler_reads_a_relationship(session) == "renamed"
    [load] = loads
    assert (load.rule, load.attribute) == ("IO102", "Shelf.items")
    assert load.call_site.endswith(" in _count_items")


@pytest.mark.parametrize(
    ("expired_by", "rule", "kind"),
    [
        pytest.param(cause, rule, kind, id=f"expired_by={cause}")
        for cause, rule, kind in [
            ("expire", "IO204", "attribute expired by expire()"),
            ("expire-all", "IO204", "attribute expired by expire()"),
            ("commit", "IO201", "attribute expired by commit"),
        ]
    ],
)
async def test_expire_is_told_from_a_commit_where_commits_expire_too(
    engine: AsyncEngine, expired_by: str, rule: str, kind: str
) -> None:
    factory = async_sessionmaker(engine)  # expire_on_commit=True
    ImplicitIOGuard("enforce").install(factory)
    async with factory() as session:
        shelf = await session.scalar(select(Shelf))
        if expired_by == "expire":
            session.expire(shelf)  # the whole object, as a commit would
        elif expired_by == "expire-all":
            session.expire_all()
        else:
            await session.commit()
        with pytest.raises(ImplicitIOError) as raised:
            shelf.label  # noqa: B018
    error = raised.value
    assert (error.rule, error.attribute) == (rule, "Shelf.label"), str(error)
    assert kind in error.load.kind, error.load.kind


# --- DetachedInstanceError ----------------------------------------------------------


async def read_after_expunge(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf))
    session.expunge(shelf)
    return shelf.items


async def read_after_close(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf))
    await session.close()
    return shelf.items


async def expired_column_after_expunge(session: AsyncSession) -> object:
    shelf = await session.scalar(select(Shelf))
    session.expire(shelf, ["label"])
    session.expunge(shelf)
    return shelf.label


DETACHED = {
    "expunge()": (read_after_expunge, "Shelf.items", "expunge()"),
    "close()": (read_after_close, "Shelf.items", "close()"),
    "an expired column": (expired_column_after_expunge, "Shelf.label", "expunge()"),
}


@pytest.mark.parametrize("label", DETACHED)
async def test_a_detached_read_is_named_with_the_attribute_and_why(
    engine: AsyncEngine, label: str
) -> None:
    scenario, attribute, reason = DETACHED[label]
    factory = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(factory)
    async with factory() as session:
        with pytest.raises(DetachedInstanceError) as raised:
            await scenario(session)
    assert explain_detached(raised.value) == (
        f"{attribute} was read after the object was detached from its session "
        f"by {reason}: nothing can load it any more. Load it before the object "
        "leaves the session (a loader option, or refresh() with its name)."
    )


def test_any_other_error_is_not_explained() -> None:
    assert explain_detached(ValueError("no")) is None
