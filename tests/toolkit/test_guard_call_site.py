"""Where the guard says a load happened, and what allowing a load means.

A load inside a library the application called (pydantic reading attributes in
``model_validate(..., from_attributes=True)``) is reported at the application's
line, with the library's frame as context. An allow-listed or baselined load runs
where a load can run, and is refused by name where none can: plain attribute
access in async code.
"""

from __future__ import annotations

import gc
import inspect
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from guide_runtime.database import private_engine
from implicit_io.guard import (
    AllowedLoadCannotRunError,
    ImplicitIOError,
    ImplicitIOGuard,
    ImplicitLoad,
    KnownException,
)
from tests.toolkit.test_guard_more_causes import Book, MoreBase, Shelf


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str


class ShelfOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    items: list[ItemOut]


@pytest.fixture
def sync_factory() -> Iterator[sessionmaker[Session]]:
    engine = create_engine("sqlite://")
    MoreBase.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Shelf(label="new", items=[Book(title="Notes", pages=1)]))
        session.commit()
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_a_load_inside_a_library_is_reported_at_the_applications_line(
    sync_factory: sessionmaker[Session],
) -> None:
    loads = []
    ImplicitIOGuard("track", on_load=loads.append).install(sync_factory)
    with sync_factory() as session:
        shelf = session.scalar(select(Shelf))
        line = inspect.currentframe().f_lineno + 1
        out = ShelfOut.model_validate(shelf, from_attributes=True)
    assert out.items == [ItemOut(title="Notes")]
    [load] = loads
    here = "tests/toolkit/test_guard_call_site.py"
    function = test_a_load_inside_a_library_is_reported_at_the_applications_line
    assert load.call_site == f"{here}:{line} in {function.__name__}"
    # pydantic's frame, from the folder it is installed in, as context.
    assert load.via.startswith("pydantic/main.py:")
    assert load.via.endswith(" in model_validate")
    assert f"at {load.call_site} (through {load.via})." in str(load)
    assert load.location == f"{here}:{line}"


# --- What allowing a load means -------------------------------------------------


ALLOW_ITEMS = KnownException(
    "IO102", "Shelf.items", "nightly export, sync worker; SHELF-1 removes it", "team"
)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with private_engine() as engine:
        async with engine.begin() as conn:
            await conn.run_sync(MoreBase.metadata.create_all)
        async with async_sessionmaker(engine)() as session:
            session.add(Shelf(label="new", items=[Book(title="Notes", pages=1)]))
            await session.commit()
        yield engine


def test_an_allowed_load_passes_where_a_load_can_run(sync_factory) -> None:
    guard = ImplicitIOGuard("enforce", allow=[ALLOW_ITEMS])
    guard.install(sync_factory)
    with sync_factory() as session:
        assert [item.title for item in session.scalar(select(Shelf)).items] == ["Notes"]
    assert guard.allowed_counts == {("IO102", "Shelf.items"): 1}
    assert guard.counts == {}


async def test_an_allowed_load_passes_inside_run_sync(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("enforce", allow=[ALLOW_ITEMS])
    guard.install(factory)
    async with factory() as session:
        shelf = await session.scalar(select(Shelf))
        titles = await session.run_sync(lambda _: [i.title for i in shelf.items])
    assert titles == ["Notes"]


@pytest.mark.parametrize("mode", ["track", "enforce"])
async def test_an_allowed_load_in_async_code_is_refused_by_name(
    engine: AsyncEngine, mode: str
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard(mode, allow=[ALLOW_ITEMS])
    guard.install(factory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with factory() as session:
            shelf = await session.scalar(select(Shelf))
            with pytest.raises(AllowedLoadCannotRunError) as raised:
                shelf.items  # noqa: B018  (the read is the point)
        gc.collect()  # a coroutine never awaited would warn when collected
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    error = raised.value
    assert isinstance(error, ImplicitIOError)
    assert (error.rule, error.attribute, error.accepted_by) == (
        "IO102",
        "Shelf.items",
        "allow-listed (IO401)",
    )
    assert "cannot run here: plain attribute access in async code" in str(error)
    assert guard.allowed_counts == {("IO102", "Shelf.items"): 1}


def test_a_baselined_load_is_reported_and_passes_in_enforce_mode(
    sync_factory,
) -> None:
    loads = []
    guard = ImplicitIOGuard(
        "enforce", baseline={("IO102", "Shelf.items")}, on_load=loads.append
    )
    guard.install(sync_factory)
    with sync_factory() as session:
        shelf = session.scalar(select(Shelf))
        assert len(shelf.items) == 1  # in the baseline: passes
    with sync_factory() as session:
        book = session.scalar(select(Book))
        with pytest.raises(ImplicitIOError):
            book.shelf  # noqa: B018  (a load the baseline does not hold)
    assert [(load.rule, load.attribute) for load in loads] == [
        ("IO102", "Shelf.items"),
        ("IO102", "Book.shelf"),
    ]
    assert guard.counts == {("IO102", "Shelf.items"): 1, ("IO102", "Book.shelf"): 1}


async def test_a_baselined_load_in_async_code_is_refused_by_name(
    engine: AsyncEngine,
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce", baseline={("IO102", "Shelf.items")}).install(factory)
    async with factory() as session:
        shelf = await session.scalar(select(Shelf))
        with pytest.raises(AllowedLoadCannotRunError, match="is in the baseline"):
            shelf.items  # noqa: B018


@pytest.mark.parametrize("accepted_by", ["allow-list", "baseline"])
async def test_code_that_catches_missing_greenlet_catches_a_refused_accepted_load(
    engine: AsyncEngine, accepted_by: str
) -> None:
    # FastAPI-JSONAPI probes a relationship with hasattr() and turns SQLAlchemy's
    # MissingGreenlet into a 500 naming the include to add. Its baselined load
    # passed in track mode; enforce with that baseline raised an error the code
    # did not catch, and failed a test the baseline had accepted.
    factory = async_sessionmaker(engine, expire_on_commit=False)
    accepted = {"allow-list": {"allow": [ALLOW_ITEMS]}}.get(
        accepted_by, {"baseline": {("IO102", "Shelf.items")}}
    )
    ImplicitIOGuard("enforce", **accepted).install(factory)
    async with factory() as session:
        shelf = await session.scalar(select(Shelf))
        try:
            shelf.items  # noqa: B018
        except MissingGreenlet as error:
            caught = error
    assert isinstance(caught, AllowedLoadCannotRunError)
    assert str(caught).startswith("IO102 implicit lazy load of a relationship")
    assert "sqlalche.me" not in str(caught)  # the guard's message, not SQLAlchemy's


# --- SQLAlchemy's own loads ------------------------------------------------------


@pytest.mark.parametrize("ends_with", ["commit", "flush"])
async def test_the_unit_of_works_load_inside_an_awaited_commit_is_not_reported(
    engine: AsyncEngine, ends_with: str
) -> None:
    # Deleting a parent whose collection was never loaded: the flush loads it (to
    # update the children's foreign keys), inside the awaited call. SQLAlchemy's
    # wrappers compiled from source text (``<string>`` on 2.0, ``<sqlalchemy
    # generated ...>`` on 2.1) were taken for application code, and the load
    # reported as IO102 "at <string>:2 in _prepare_impl" (fastcrud's suite).
    factory = async_sessionmaker(engine, expire_on_commit=False)
    loads: list[object] = []
    guard = ImplicitIOGuard("enforce", on_load=loads.append)
    guard.install(factory)
    async with factory() as session:
        shelf = Shelf(label="empty")
        session.add(shelf)
        await session.commit()
        await session.delete(shelf)
        await getattr(session, ends_with)()
        assert await session.get(Shelf, shelf.id) is None
    assert loads == []
    assert guard.counts == {}


class CascadeBase(DeclarativeBase):
    pass


class Basket(CascadeBase):
    __tablename__ = "cascade_basket"
    id: Mapped[int] = mapped_column(primary_key=True)
    eggs: Mapped[list[Egg]] = relationship(cascade="all, delete-orphan", lazy="select")


class Egg(CascadeBase):
    __tablename__ = "cascade_egg"
    id: Mapped[int] = mapped_column(primary_key=True)
    basket_id: Mapped[int] = mapped_column(ForeignKey("cascade_basket.id"))


@pytest.fixture
def guarded_baskets() -> Iterator[tuple[sessionmaker[Session], list[ImplicitLoad]]]:
    """A sync session factory on the baskets' tables, its guard enforcing, and the
    loads it refused."""
    engine = create_engine("sqlite://")
    CascadeBase.metadata.create_all(engine)
    factory = sessionmaker(engine)
    loads: list[ImplicitLoad] = []
    ImplicitIOGuard("enforce", on_load=loads.append).install(factory)
    yield factory, loads
    engine.dispose()


def test_a_sync_delete_or_merge_cascade_is_not_an_implicit_load(
    guarded_baskets: tuple[sessionmaker[Session], list[ImplicitLoad]],
) -> None:
    # sqlalchemy-bind-manager's suite: `session.delete(instance)` of a saved model
    # whose delete-orphan collection was never loaded was reported (IO102, at the
    # delete() line); merge() loads the persistent copy's collection the same way.
    # An awaited delete()/merge() runs them in its greenlet: nothing reported.
    factory, loads = guarded_baskets
    with factory() as session:
        empty, full = Basket(id=1), Basket(id=2, eggs=[Egg()])
        session.add_all([empty, full])
        session.commit()
        session.expunge_all()  # detached, expired: as a repository hands them out
    with factory() as session:
        session.merge(Basket(id=2, eggs=[Egg()]))  # loads basket 2's eggs
        session.delete(empty)  # reloads basket 1, loads its eggs
        session.commit()
    assert loads == []
    with factory() as session, pytest.raises(ImplicitIOError):
        len(session.get(Basket, 2).eggs)  # the application's own read: refused
    assert [load.attribute for load in loads] == ["Basket.eggs"]


def test_a_sync_get_of_an_expired_object_is_not_an_implicit_load(
    guarded_baskets: tuple[sessionmaker[Session], list[ImplicitLoad]],
) -> None:
    # sqlalchemy-mixins' suite: `cls.query.get(id_)` of a post its commit had
    # expired was reported (IO201 Post.archived, a column no code read, at the
    # get() line). The code asked for the row; an awaited get() reloads it in its
    # greenlet, unreported. A read of the expired object's attribute still is.
    factory, loads = guarded_baskets
    with factory() as session:
        basket = Basket(id=1)
        session.add(basket)
        session.commit()  # expires the basket, kept in the identity map
        assert session.get(Basket, 1) is basket
        session.commit()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Query.get() is legacy
            assert session.query(Basket).get(1) is basket
        assert loads == []
        session.commit()
        with pytest.raises(ImplicitIOError):
            _ = basket.id  # the application's own read: refused
    assert [load.attribute for load in loads] == ["Basket.id"]


def test_the_unit_of_works_loads_in_a_sync_flush_are_not_reported(
    sync_factory: sessionmaker[Session],
) -> None:
    # No greenlet tells a sync session's flush from the application's reads: the
    # flush on the stack does. Both loads below were reported (IO102, IO201) at
    # the commit() line on sqlalchemy-mixins' suite; under an AsyncSession the
    # same loads run inside the awaited commit().
    loads: list[object] = []
    guard = ImplicitIOGuard("enforce", on_load=loads.append)
    guard.install(sync_factory)
    with sync_factory() as session:
        empty = Shelf(label="empty")
        session.add(empty)
        session.commit()
        session.delete(empty)
        session.commit()  # loads the deleted shelf's collection, never loaded
        shelf = session.scalar(select(Shelf))
        session.expire(shelf)
        session.add(Book(title="Atlas", pages=2, shelf=shelf))
        session.commit()  # reloads the expired shelf's key, for the book's row
    assert loads == []
    with sync_factory() as session:
        assert session.scalar(select(Book.shelf_id).where(Book.title == "Atlas"))
