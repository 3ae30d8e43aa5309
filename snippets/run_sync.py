"""Running legacy synchronous ORM code inside an AsyncSession (IO301)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, selectinload

from snippets.models import User


# region legacy_function
def post_titles_by_author_legacy(session: Session) -> dict[str, list[str]]:
    """Written for a synchronous Session: Query API, lazy loads in the loop."""
    users = session.query(User).order_by(User.id).all()
    return {user.name: [post.title for post in user.posts] for user in users}


# endregion legacy_function


# region direct_call
async def legacy_report_called_directly(session: AsyncSession) -> dict[str, list[str]]:
    # Broken: the sync facade of an AsyncSession cannot wait for the driver.
    return post_titles_by_author_legacy(session.sync_session)


# endregion direct_call


# region run_sync_call
async def legacy_report(session: AsyncSession) -> dict[str, list[str]]:
    # The whole function runs where blocking-style ORM calls are allowed,
    # including each lazy load in its loop.
    return await session.run_sync(post_titles_by_author_legacy)


# endregion run_sync_call


# region legacy_eager
def post_titles_by_author_preloaded(session: Session) -> dict[str, list[str]]:
    users = (
        session.query(User).options(selectinload(User.posts)).order_by(User.id).all()
    )
    return {user.name: [post.title for post in user.posts] for user in users}


async def legacy_report_preloaded(session: AsyncSession) -> dict[str, list[str]]:
    return await session.run_sync(post_titles_by_author_preloaded)


# endregion legacy_eager


# region run_sync_arguments
def rename_user_legacy(session: Session, user_id: int, new_name: str) -> str:
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    user.name = new_name
    session.flush()
    return user.name


async def rename_user(session: AsyncSession) -> str:
    # Extra positional and keyword arguments are passed on after the Session.
    return await session.run_sync(rename_user_legacy, 3, new_name="torvalds")


# endregion run_sync_arguments


# region create_all
reporting_metadata = MetaData()

legacy_report_table = Table(
    "legacy_report",
    reporting_metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200)),
)


async def create_reporting_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        # create_all is synchronous code; run_sync hands it a sync Connection.
        await conn.run_sync(reporting_metadata.create_all)


# endregion create_all
