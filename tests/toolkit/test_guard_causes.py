"""The guard names why an attribute was unloaded when code read it.

Each way a column or relationship can be unloaded, on aiosqlite, in its own small
model (so the suite can run it on any supported SQLAlchemy line).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import FetchedValue, ForeignKey, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    load_only,
    mapped_column,
    relationship,
    selectinload,
)
from sqlalchemy.pool import StaticPool

from implicit_io.guard import ImplicitIOError, ImplicitIOGuard


class CauseBase(DeclarativeBase):
    pass


class Author(CauseBase):
    __tablename__ = "cause_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    bio: Mapped[str] = mapped_column(deferred=True, default="")
    revision: Mapped[int] = mapped_column(
        server_default=text("1"), server_onupdate=FetchedValue()
    )
    books: Mapped[list[Book]] = relationship(back_populates="author", lazy="select")


class Book(CauseBase):
    __tablename__ = "cause_book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("cause_author.id"))
    author: Mapped[Author] = relationship(back_populates="books", lazy="select")


Read = Callable[[AsyncSession], Awaitable[object]]


async def _author(session: AsyncSession) -> Author:
    query = select(Author).options(selectinload(Author.books))
    return await session.scalar(query)


async def commit_then_column(session: AsyncSession) -> object:
    author = await _author(session)
    await session.commit()
    return author.name


async def commit_then_collection(session: AsyncSession) -> object:
    author = await _author(session)
    await session.commit()
    return author.books


async def expire_the_object(session: AsyncSession) -> object:
    author = await _author(session)
    session.expire(author)
    return author.name


async def expire_named_attributes(session: AsyncSession) -> object:
    author = await _author(session)
    session.expire(author, ["name"])
    return author.name


async def expire_a_named_relationship(session: AsyncSession) -> object:
    author = await _author(session)  # books loaded, then expired by name
    session.expire(author, ["books"])
    return author.books


async def expire_all(session: AsyncSession) -> object:
    author = await _author(session)
    session.expire_all()
    return author.name


async def rollback_then_column(session: AsyncSession) -> object:
    author = await _author(session)
    await session.rollback()
    return author.name


async def orm_update_then_column(session: AsyncSession) -> object:
    author = await _author(session)
    # The session cannot compute upper() itself: it expires what it cannot set.
    await session.execute(update(Author).values(name=func.upper(Author.name)))
    return author.name


async def deferred_column(session: AsyncSession) -> object:
    author = await _author(session)
    return author.bio


async def load_only_other_columns(session: AsyncSession) -> object:
    author = await session.scalar(select(Author).options(load_only(Author.id)))
    return author.name


async def server_onupdate_after_flush(session: AsyncSession) -> object:
    author = await _author(session)
    author.name = "ada lovelace"
    await session.flush()
    return author.revision


async def never_loaded_relationship(session: AsyncSession) -> object:
    author = await session.scalar(select(Author))
    return author.books


async def collection_of_a_new_object(session: AsyncSession) -> object:
    author = Author(name="grace")
    session.add(author)
    await session.flush()
    return author.books


async def refresh_of_some_attributes(session: AsyncSession) -> object:
    author = await _author(session)
    await session.commit()
    await session.refresh(author, ["name"])  # explicit: the guard lets it through
    return author.revision  # still expired by the commit


CAUSES = {
    # label: (expire_on_commit, scenario, rule, attribute, kind)
    "commit expires columns": (
        True,
        commit_then_column,
        "IO201",
        "Author.name",
        "attribute expired by commit",
    ),
    "commit expires collections": (
        True,
        commit_then_collection,
        "IO201",
        "Author.books",
        "expired by commit",
    ),
    "expire() of the object, where commits expire too": (
        True,
        expire_the_object,
        "IO204",
        "Author.name",
        "expired by expire()",
    ),
    "expire() of named attributes": (
        False,
        expire_named_attributes,
        "IO204",
        "Author.name",
        "expired by expire()",
    ),
    # SQLAlchemy puts a relationship named so in no expired_attributes: found in
    # fastapi-users-db-sqlalchemy's suite, it was "IO102 implicit lazy load".
    "expire() of a named relationship": (
        False,
        expire_a_named_relationship,
        "IO204",
        "Author.books",
        "expired by expire()",
    ),
    "expire_all()": (False, expire_all, "IO204", "Author.name", "expired by expire()"),
    "rollback() expires even with expire_on_commit=False": (
        False,
        rollback_then_column,
        "IO202",
        "Author.name",
        "expired by rollback()",
    ),
    "an ORM UPDATE expires what it cannot compute": (
        False,
        orm_update_then_column,
        "IO202",
        "Author.name",
        "expired by an ORM UPDATE/DELETE",
    ),
    "deferred column": (
        False,
        deferred_column,
        "IO107",
        "Author.bio",
        "deferred column",
    ),
    "load_only() leaves the other columns unloaded": (
        False,
        load_only_other_columns,
        "IO107",
        "Author.name",
        "deferred column",
    ),
    "server_onupdate value expired by the flush": (
        False,
        server_onupdate_after_flush,
        "IO203",
        "Author.revision",
        "server-generated value not fetched",
    ),
    "never-loaded lazy relationship": (
        False,
        never_loaded_relationship,
        "IO102",
        "Author.books",
        "implicit lazy load of a relationship",
    ),
    "collection of a new object": (
        False,
        collection_of_a_new_object,
        "IO102",
        "Author.books",
        "collection of a new object, never given a value",
    ),
    "refresh() of some attributes leaves the others expired": (
        True,
        refresh_of_some_attributes,
        "IO201",
        "Author.revision",
        "expired by commit",
    ),
}


@pytest.fixture
async def engine() -> AsyncIterator:
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    async with engine.begin() as conn:
        await conn.run_sync(CauseBase.metadata.create_all)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        session.add(Author(name="ada", books=[Book(title="Notes")]))
        await session.commit()
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("label", CAUSES)
async def test_the_guard_names_the_cause(engine, label: str) -> None:
    expire_on_commit, scenario, rule, attribute, kind = CAUSES[label]
    factory = async_sessionmaker(engine, expire_on_commit=expire_on_commit)
    ImplicitIOGuard("enforce").install(factory)
    async with factory() as session:
        with pytest.raises(ImplicitIOError) as raised:
            await scenario(session)
    error = raised.value
    assert (error.rule, error.attribute) == (rule, attribute), str(error)
    assert kind in error.load.kind
    assert error.call_site.endswith(f" in {scenario.__name__}")
