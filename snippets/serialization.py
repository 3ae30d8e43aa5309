"""Turning ORM objects into responses, log lines and dicts (IO101, IO103)."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, String, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    Mapped,
    mapped_column,
    relationship,
    selectinload,
)

from snippets.models import Base, User
from snippets.new_objects_and_collections import DataclassPlaylist

logger = logging.getLogger(__name__)


# region response_models
class PostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str


class UserOut(BaseModel):
    """What GET /users/{id} returns; FastAPI validates it the same way."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    posts: list[PostOut]


# endregion response_models


# region validate_lazy
async def user_response_lazy(session: AsyncSession) -> UserOut:
    user = await session.get_one(User, 1)
    # Broken: validation reads `user.posts`, which nobody loaded.
    return UserOut.model_validate(user)


# endregion validate_lazy


# region validate_detached
async def user_response_after_session_closed(
    session_factory: async_sessionmaker[AsyncSession],
) -> UserOut:
    async with session_factory() as session:
        user = await session.get_one(User, 1)
    # Broken: the ORM object left the session; the framework serialises it later.
    return UserOut.model_validate(user)


# endregion validate_detached


# region validate_eager
async def user_response(session: AsyncSession) -> UserOut:
    # Load exactly what UserOut reads: the user and its posts, nothing more.
    stmt = select(User).where(User.id == 1).options(selectinload(User.posts))
    user = (await session.scalars(stmt)).one()
    return UserOut.model_validate(user)


# endregion validate_eager


# region validate_in_session
async def get_user_handler(
    session_factory: async_sessionmaker[AsyncSession], user_id: int
) -> UserOut:
    async with session_factory() as session:
        stmt = select(User).where(User.id == user_id).options(selectinload(User.posts))
        user = (await session.scalars(stmt)).one()
        # Build the response while the session is open; no ORM object escapes.
        return UserOut.model_validate(user)


# endregion validate_in_session


async def _get_first_user(session_factory: async_sessionmaker[AsyncSession]) -> UserOut:
    return await get_user_handler(session_factory, user_id=1)


# region shipment_mapping
class ReprShipment(Base):
    __tablename__ = "repr_shipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier: Mapped[str] = mapped_column(String(50))
    parcels: Mapped[list[ReprParcel]] = relationship(
        back_populates="shipment", order_by="ReprParcel.id"
    )

    def __repr__(self) -> str:
        # Broken: touches a relationship, so printing the object may query.
        return f"ReprShipment(id={self.id}, parcels={len(self.parcels)})"


# endregion shipment_mapping


# region loaded_state_repr
class LoadedStateRepr:
    """A __repr__ built from loaded state only: printing never queries."""

    def __repr__(self) -> str:
        state = inspect(self)
        shown = [
            f"{column.key}={state.dict[column.key]!r}"
            for column in state.mapper.column_attrs
            if column.key not in state.unloaded
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


class ReprParcel(LoadedStateRepr, Base):
    __tablename__ = "repr_parcel"

    id: Mapped[int] = mapped_column(primary_key=True)
    weight_grams: Mapped[int]
    shipment_id: Mapped[int] = mapped_column(ForeignKey("repr_shipment.id"))
    shipment: Mapped[ReprShipment] = relationship(back_populates="parcels")


# endregion loaded_state_repr


async def _seed_shipments(session: AsyncSession) -> None:
    session.add(
        ReprShipment(
            id=1,
            carrier="post",
            parcels=[ReprParcel(weight_grams=500), ReprParcel(weight_grams=1200)],
        )
    )
    session.add(DataclassPlaylist(name="focus", tracks=[]))


# region repr_unsafe
async def describe_shipment(session: AsyncSession) -> str:
    shipment = await session.get_one(ReprShipment, 1)
    return repr(shipment)


# endregion repr_unsafe


# region log_unsafe
async def log_slow_shipment(session: AsyncSession) -> ReprShipment | None:
    shipment = await session.get_one(ReprShipment, 1)
    # Broken, quietly: logging formats the message later, inside its handler.
    logger.warning("slow shipment: %r", shipment)
    return shipment


# endregion log_unsafe


async def _with_a_plain_log_handler(
    log_call: Callable[[AsyncSession], Awaitable[object]], session: AsyncSession
) -> dict[str, str]:
    """Run ``log_call`` with one plain handler, as a service would have one."""
    output, errors = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(output)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with contextlib.redirect_stderr(errors):
            await log_call(session)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        gc.collect()  # a failed load's coroutine warns now, not in a later run
    stderr_lines = errors.getvalue().splitlines() or [""]
    return {
        "log output": output.getvalue(),
        "stderr, first line": stderr_lines[0],
        "stderr, last line": stderr_lines[-1],
    }


async def _log_slow_shipment_to_a_handler(session: AsyncSession) -> dict[str, str]:
    return await _with_a_plain_log_handler(log_slow_shipment, session)


async def _log_slow_shipment_safely_to_a_handler(
    session: AsyncSession,
) -> dict[str, str]:
    return await _with_a_plain_log_handler(log_slow_shipment_safely, session)


# region repr_safe
async def describe_parcels(session: AsyncSession) -> list[str]:
    parcels = await session.scalars(select(ReprParcel).order_by(ReprParcel.id))
    return [repr(parcel) for parcel in parcels]


# endregion repr_safe


# region dataclass_repr
async def describe_playlist(session: AsyncSession) -> str:
    playlist = await session.scalar(select(DataclassPlaylist))
    # Broken: the generated dataclass __repr__ includes every field, `tracks` too.
    return repr(playlist)


# endregion dataclass_repr


# region to_dict_unsafe
def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "posts": [post.title for post in user.posts],
    }


async def export_user(session: AsyncSession) -> dict[str, Any]:
    user = await session.get_one(User, 1)
    return user_to_dict(user)


# endregion to_dict_unsafe


# region to_dict_loaded
def loaded_columns(obj: object) -> dict[str, Any]:
    """The column attributes that are loaded; expired or deferred ones are left out."""
    state = inspect(obj)
    return {
        column.key: state.dict[column.key]
        for column in state.mapper.column_attrs
        if column.key not in state.unloaded
    }


def loaded_to_dict(obj: object) -> dict[str, Any]:
    """Loaded columns, plus each relationship that is loaded, one level deep."""
    state = inspect(obj)
    result = loaded_columns(obj)
    for relationship_ in state.mapper.relationships:
        key = relationship_.key
        if key in state.unloaded:
            continue
        value = state.dict[key]
        if relationship_.uselist:
            result[key] = [loaded_columns(item) for item in value]
        else:
            result[key] = None if value is None else loaded_columns(value)
    return result


async def export_user_loaded_state(session: AsyncSession) -> dict[str, Any]:
    user = await session.get_one(User, 1)
    return loaded_to_dict(user)


# endregion to_dict_loaded


# region log_safe
async def log_slow_shipment_safely(session: AsyncSession) -> ReprShipment | None:
    shipment = await session.get_one(ReprShipment, 1)
    # Log loaded columns, never the object: formatting it cannot query.
    logger.warning("slow shipment: %s", loaded_columns(shipment))
    return shipment


# endregion log_safe
