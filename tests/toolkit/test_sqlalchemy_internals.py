"""What implicit_io/_sqlalchemy_internals.py reads from SQLAlchemy's private API.

Each test fails with a message naming the function to update when an upgrade
changes what it relies on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import FrameType

import pytest
import sqlalchemy
from sqlalchemy import (
    FetchedValue,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
)
from sqlalchemy.util import greenlet_spawn

from implicit_io import _sqlalchemy_internals as internals

UPGRADE = f"SQLAlchemy {sqlalchemy.__version__} changed"


class InternalsBase(DeclarativeBase):
    pass


class Gadget(InternalsBase):
    __tablename__ = "internals_gadget"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    version: Mapped[int] = mapped_column(
        server_default=text("1"), server_onupdate=FetchedValue()
    )


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    InternalsBase.metadata.create_all(engine)
    with Session(engine, expire_on_commit=True) as session:
        session.add(Gadget(name="lamp"))
        session.commit()
        yield session
    engine.dispose()


def _column_loads(session: Session) -> list[ORMExecuteState]:
    seen: list[ORMExecuteState] = []

    @event.listens_for(session, "do_orm_execute")
    def keep(state: ORMExecuteState) -> None:
        if state.is_column_load:
            seen.append(state)

    return seen


def test_in_greenlet_is_importable_and_false_outside_one() -> None:
    assert internals.in_greenlet() is False, (
        f"{UPGRADE} sqlalchemy.util.concurrency.in_greenlet: update in_greenlet()"
    )


def test_a_column_load_exposes_its_object_keys_and_refresh_flag(session) -> None:
    gadget = session.scalar(select(Gadget))
    session.expire(gadget, ["name"])
    loads = _column_loads(session)
    assert gadget.name == "lamp"
    session.refresh(gadget, ["name"])
    [implicit, explicit] = loads
    try:
        assert internals.refresh_state(implicit) is inspect(gadget)
        assert internals.keys_to_load(implicit) == ("name",)
        assert internals.is_user_refresh(implicit) is False
        assert internals.is_user_refresh(explicit) is True
    except (AttributeError, AssertionError) as error:
        pytest.fail(
            f"{UPGRADE} ORMExecuteState.load_options or the statement's compile "
            f"options: update refresh_state(), keys_to_load(), is_user_refresh() "
            f"({error!r})"
        )


def test_never_loaded_tells_new_objects_from_loaded_ones(session) -> None:
    loaded = session.scalar(select(Gadget))
    new = Gadget(name="desk")
    session.add(new)
    session.flush()
    assert internals.never_loaded(inspect(new)), f"{UPGRADE} InstanceState.runid"
    assert not internals.never_loaded(inspect(loaded)), (
        f"{UPGRADE} InstanceState.runid: update never_loaded()"
    )


@pytest.mark.parametrize(
    ("cause", "key"),
    [
        ("commit", "name"),
        ("rollback", "name"),
        ("flush", "version"),
        ("expire", "name"),
    ],
)
def test_expiry_causes_are_seen_in_the_order_the_tracking_assumes(
    session, cause: str, key: str
) -> None:
    internals.track_expiry()
    gadget = session.scalar(select(Gadget))
    if cause == "commit":
        session.commit()
    elif cause == "rollback":
        session.rollback()
    elif cause == "flush":
        gadget.name = "bright lamp"
        session.flush()
    elif cause == "bulk":
        session.execute(update(Gadget).values(name=func.upper(Gadget.name)))
    else:
        session.expire(gadget)
    assert internals.expiry_cause(inspect(gadget), key) == cause, (
        f"{UPGRADE} when session events fire around expiry, or the Mapper "
        f"'expire' event, or the name or depth of the function that synchronizes "
        f"the session after an ORM UPDATE: update track_expiry() ({cause})"
    )


def _on_the_stack_of_each_statement(
    session: Session, found_in: Callable[[FrameType], bool]
) -> list[bool]:
    """For each ORM statement the session runs from now on: whether a frame of its
    stack is one ``found_in`` recognises."""
    seen: list[bool] = []

    @event.listens_for(session, "do_orm_execute")
    def record(state: ORMExecuteState) -> None:
        frame: FrameType | None = sys._getframe()
        while frame is not None and not found_in(frame):
            frame = frame.f_back
        seen.append(frame is not None)

    return seen


def test_is_cascade_finds_delete_and_merge_on_the_stack(session) -> None:
    seen = _on_the_stack_of_each_statement(session, internals.is_cascade)

    lamp = session.scalar(select(Gadget))  # a query: outside any cascade
    session.expunge(lamp)
    session.merge(Gadget(id=lamp.id, name="lamp"))  # loads the persistent copy
    # (delete()'s cascade loads are test_guard_call_site's: Gadget has none.)
    assert seen == [False, True], f"{UPGRADE} Session._merge: update is_cascade()"


def test_is_get_finds_session_get_on_the_stack(session) -> None:
    seen = _on_the_stack_of_each_statement(session, internals.is_get)

    lamp = session.scalar(select(Gadget))  # a query: outside any get()
    key = lamp.id
    session.commit()  # expires the lamp, still in the identity map
    assert session.get(Gadget, key) is lamp  # reloads its columns
    assert seen == [False, True], f"{UPGRADE} Session._get_impl: update is_get()"


def test_is_flush_finds_the_flush_on_the_stack(session) -> None:
    seen = _on_the_stack_of_each_statement(session, internals.is_flush)

    @event.listens_for(session, "before_flush")
    def query(session: Session, context: object, instances: object) -> None:
        session.execute(select(Gadget.id))  # a statement sent inside the flush

    session.execute(select(Gadget.id))  # outside a flush
    session.add(Gadget(name="desk"))
    session.flush()
    assert seen == [False, True], f"{UPGRADE} Session._flush: update is_flush()"


async def test_spawned_by_run_sync_tells_run_sync_from_other_greenlet_spawns() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with engine.connect() as connection, AsyncSession(engine) as session:
            seen = [
                await session.run_sync(lambda _: internals.spawned_by_run_sync()),
                await connection.run_sync(lambda _: internals.spawned_by_run_sync()),
                await greenlet_spawn(internals.spawned_by_run_sync),
            ]
    finally:
        await engine.dispose()
    assert seen == [True, True, False], (
        f"{UPGRADE} run_sync() -> greenlet_spawn(): update spawned_by_run_sync()"
    )
