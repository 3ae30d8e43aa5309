"""Expired attributes: what expires them, and reloading with an awaited refresh.

Serves IO201 (expire_on_commit=False), IO202 (refresh named attributes) and
IO204 (no expire() in async code).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from snippets.deferred_columns import Report
from snippets.models import User


async def rename_user_default_session(engine: AsyncEngine) -> str:
    # AsyncSession's default is expire_on_commit=True.
    async with AsyncSession(engine) as session:
        user = await session.scalar(select(User).where(User.name == "ada"))
        user.name = "Ada Lovelace"
        await session.commit()
        # Broken: the commit expired every attribute, so this read is a query.
        return user.name


# region session_factory
def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Committed objects keep the values they hold; nothing reloads behind an
    # attribute access. Reload explicitly, with refresh(), where it matters.
    return async_sessionmaker(engine, expire_on_commit=False)


async def rename_user(engine: AsyncEngine) -> str:
    async with make_session_factory(engine)() as session:
        user = await session.scalar(select(User).where(User.name == "ada"))
        user.name = "Ada Lovelace"
        await session.commit()
        return user.name


# endregion session_factory


async def read_after_expire(session: AsyncSession) -> str:
    user = await session.scalar(select(User).where(User.name == "ada"))
    session.expire(user)
    # Broken: expire() dropped the loaded values; the next read is a query.
    return user.name


async def read_after_expire_all(session: AsyncSession) -> str:
    user = await session.scalar(select(User).where(User.name == "ada"))
    session.expire_all()
    # Broken: expire_all() does the same to every object in the session.
    return user.name


async def read_after_rollback(engine: AsyncEngine) -> str:
    async with make_session_factory(engine)() as session:  # expire_on_commit=False
        user = await session.scalar(select(User).where(User.name == "ada"))
        await session.rollback()
        # Broken: rollback() expires every object, whatever expire_on_commit says.
        return user.name


async def reload_whole_report(session: AsyncSession) -> str:
    report = await session.scalar(select(Report).where(Report.title == "Q1"))
    await session.refresh(report)
    # Broken: a refresh without names reloads the loaded columns, not the
    # deferred ones; `body` is still unloaded, and reading it is a query.
    return report.body


async def reload_whole_user(session: AsyncSession) -> tuple[str, list[str]]:
    stmt = select(User).where(User.name == "ada").options(selectinload(User.posts))
    user = await session.scalar(stmt)
    # Reloads every column, and again runs the eager loads `user` was loaded with.
    await session.refresh(user)
    return user.name, [post.title for post in user.posts]


async def refresh_user_name(session: AsyncSession) -> str:
    user = await session.scalar(select(User).where(User.name == "ada"))
    # Someone else changes the row: here an UPDATE the session does not apply to
    # the objects it holds, as for a change made by another process.
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(name="Ada Lovelace")
        .execution_options(synchronize_session=False)
    )
    await session.refresh(user, ["name"])
    return user.name


async def load_posts_by_refresh(session: AsyncSession) -> list[str]:
    user = await session.scalar(select(User).where(User.name == "ada"))
    # Naming a lazy relationship makes refresh() load it, in the awaited call.
    await session.refresh(user, ["posts"])
    return [post.title for post in user.posts]


async def _rename_behind_the_session(session: AsyncSession) -> None:
    """Another process renames every user: an UPDATE the session does not apply."""
    await session.execute(
        update(User)
        .values(name=User.name + " (renamed)")
        .execution_options(synchronize_session=False)
    )


async def reload_users_in_one_query(session: AsyncSession) -> list[str]:
    users = (await session.scalars(select(User).order_by(User.id))).all()
    await _rename_behind_the_session(session)
    # The same query again would hand back the objects it holds, unchanged.
    # populate_existing overwrites their loaded attributes from the new rows,
    # all in this one awaited SELECT.
    stmt = select(User).order_by(User.id).execution_options(populate_existing=True)
    users = (await session.scalars(stmt)).all()
    return [user.name for user in users]


async def _query_again_without_populate_existing(session: AsyncSession) -> list[str]:
    users = (await session.scalars(select(User).order_by(User.id))).all()
    await _rename_behind_the_session(session)
    users = (await session.scalars(select(User).order_by(User.id))).all()
    return [user.name for user in users]
