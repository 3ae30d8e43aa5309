"""Moving sync, 1.x-style ORM code to AsyncSession, one step at a time.

Each example comes in two forms that send the same SQL: a sync one on a pysqlite
``Session`` (the code you have) and an async one on an ``AsyncSession`` (the code
you want). The statements are built the same way; only running them differs.
"""

from __future__ import annotations

from importlib import metadata

from sqlalchemy import Select, create_engine, func, inspect, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, raiseload, selectinload, sessionmaker

from snippets.models import Base, Post, User


# region requirement
def greenlet_requirement() -> str:
    """How the installed SQLAlchemy declares its dependency on greenlet."""
    requirements = metadata.requires("sqlalchemy") or []
    return next(line for line in requirements if line.startswith("greenlet"))


# endregion requirement


# region setup_sync
def make_sync_session_factory(url: str) -> sessionmaker[Session]:
    engine = create_engine(url)  # e.g. "sqlite:///app.db" (pysqlite)
    return sessionmaker(engine)


# endregion setup_sync


# region setup_async
def make_async_session_factory(url: str) -> async_sessionmaker[AsyncSession]:
    engine = create_async_engine(url)  # e.g. "sqlite+aiosqlite:///app.db"
    # Objects stay readable after commit instead of reloading on access (IO201).
    return async_sessionmaker(engine, expire_on_commit=False)


# endregion setup_async


# region create_tables
async def create_tables(engine: AsyncEngine) -> list[str]:
    async with engine.begin() as conn:
        # create_all and inspect() are sync APIs: run_sync hands them a sync
        # Connection whose I/O is awaited for them.
        await conn.run_sync(Base.metadata.create_all)
        return await conn.run_sync(
            lambda sync_conn: inspect(sync_conn).get_table_names()
        )


# endregion create_tables


# region legacy_query
def legacy_names_starting_with_a(sync_session: Session) -> list[str]:
    users = (
        sync_session.query(User)
        .filter(User.name.startswith("a"))
        .order_by(User.id)
        .all()
    )
    return [user.name for user in users]


# endregion legacy_query


# region statement
def names_starting_with(prefix: str) -> Select[tuple[User]]:
    # A statement is plain data: the same object runs on Session and AsyncSession.
    return select(User).where(User.name.startswith(prefix)).order_by(User.id)


# endregion statement


# region select_sync
def sync_names_starting_with_a(sync_session: Session) -> list[str]:
    users = sync_session.scalars(names_starting_with("a")).all()
    return [user.name for user in users]


# endregion select_sync


# region select_async
async def names_starting_with_a(session: AsyncSession) -> list[str]:
    users = (await session.scalars(names_starting_with("a"))).all()
    return [user.name for user in users]


# endregion select_async


# region unwrap_sync
def sync_unwrapping(sync_session: Session) -> dict[str, str | None]:
    ada = select(User).where(User.name == "ada")
    nobody = select(User).where(User.name == "nobody")
    by_name = select(User).order_by(User.name)
    return {
        "scalars().one()": sync_session.execute(ada).scalars().one().name,
        "scalar_one()": sync_session.execute(ada).scalar_one().name,
        "scalar_one_or_none()": sync_session.execute(nobody).scalar_one_or_none(),
        "scalars().first()": sync_session.scalars(by_name.limit(1)).first().name,
        "get()": sync_session.get(User, 2).name,
    }


# endregion unwrap_sync


# region unwrap_async
async def unwrapping(session: AsyncSession) -> dict[str, str | None]:
    ada = select(User).where(User.name == "ada")
    nobody = select(User).where(User.name == "nobody")
    by_name = select(User).order_by(User.name)
    return {
        "scalars().one()": (await session.execute(ada)).scalars().one().name,
        "scalar_one()": (await session.execute(ada)).scalar_one().name,
        "scalar_one_or_none()": (await session.execute(nobody)).scalar_one_or_none(),
        "scalars().first()": (await session.scalars(by_name.limit(1))).first().name,
        "get()": (await session.get(User, 2)).name,
    }


# endregion unwrap_async


# region rows_sync
def sync_rows_and_objects(sync_session: Session) -> dict[str, object]:
    # Columns: each row is a named tuple of values, not an object.
    rows = sync_session.execute(select(User.id, User.name).order_by(User.id)).all()
    # An entity: each row is a 1-tuple holding the object; scalars() takes it out.
    entity_row = sync_session.execute(select(User).order_by(User.id)).first()
    return {
        "column rows": [(row.id, row.name) for row in rows],
        "entity row holds": type(entity_row[0]).__name__,
        "entity row by name": entity_row.User.name,
    }


# endregion rows_sync


# region rows_async
async def rows_and_objects(session: AsyncSession) -> dict[str, object]:
    rows = (await session.execute(select(User.id, User.name).order_by(User.id))).all()
    entity_row = (await session.execute(select(User).order_by(User.id))).first()
    return {
        "column rows": [(row.id, row.name) for row in rows],
        "entity row holds": type(entity_row[0]).__name__,
        "entity row by name": entity_row.User.name,
    }


# endregion rows_async


# region legacy_first
def legacy_first_user(sync_session: Session) -> str:
    # Query.first() adds LIMIT to the SQL it sends.
    return sync_session.query(User).order_by(User.id).first().name


# endregion legacy_first


# region first_without_limit
async def first_user_fetching_all(session: AsyncSession) -> str:
    # Broken (slowly): first() runs after the query, which returned every row.
    result = await session.scalars(select(User).order_by(User.id))
    return result.first().name


# endregion first_without_limit


# region first_with_limit
async def first_user(session: AsyncSession) -> str:
    result = await session.scalars(select(User).order_by(User.id).limit(1))
    return result.first().name


# endregion first_with_limit


# region leave_alone
def legacy_post_counts(sync_session: Session) -> dict[str, int]:
    """Unchanged 1.x code: Query, and a lazy load of user.posts per user."""
    return {
        user.name: len(user.posts)
        for user in sync_session.query(User).order_by(User.id)
    }


async def post_counts_via_run_sync(session: AsyncSession) -> dict[str, int]:
    # The sync Session run_sync passes in can lazy load: each of its queries is
    # awaited for it. Convenient, and every N+1 of the old code comes along.
    return await session.run_sync(legacy_post_counts)


# endregion leave_alone


# region upgraded
async def post_counts(session: AsyncSession) -> dict[str, int]:
    stmt = select(User).options(selectinload(User.posts)).order_by(User.id)
    return {user.name: len(user.posts) for user in await session.scalars(stmt)}


# endregion upgraded


# region strict
async def post_counts_strict(session: AsyncSession) -> dict[str, int]:
    # raiseload("*") turns any load this query did not plan into an immediate
    # error, instead of a hidden query (or a MissingGreenlet later).
    stmt = (
        select(User).options(selectinload(User.posts), raiseload("*")).order_by(User.id)
    )
    return {user.name: len(user.posts) for user in await session.scalars(stmt)}


async def post_counts_strict_unplanned(session: AsyncSession) -> dict[str, int]:
    # Broken on purpose: the query forgot to load User.posts.
    stmt = select(User).options(raiseload("*")).order_by(User.id)
    return {user.name: len(user.posts) for user in await session.scalars(stmt)}


# endregion strict


# region aggregate
async def post_counts_in_sql(session: AsyncSession) -> dict[str, int]:
    # When only a number is needed, ask the database for the number.
    stmt = (
        select(User.name, func.count(Post.id))
        .outerjoin(User.posts)
        .group_by(User.id)
        .order_by(User.id)
    )
    return {name: count for name, count in await session.execute(stmt)}


# endregion aggregate
