"""Loading relationships up front, inside the awaited query (IO101)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from snippets.models import Post, User


async def post_titles_by_author_lazy(session: AsyncSession) -> dict[str, list[str]]:
    users = await session.scalars(select(User).order_by(User.id))
    # Broken: `user.posts` was never loaded, so reading it needs a query, and a
    # plain attribute access has no way to await one.
    return {user.name: [post.title for post in user.posts] for user in users}


async def post_titles_by_author(session: AsyncSession) -> dict[str, list[str]]:
    stmt = select(User).options(selectinload(User.posts)).order_by(User.id)
    users = await session.scalars(stmt)
    return {user.name: [post.title for post in user.posts] for user in users}


async def post_titles_by_author_joined(session: AsyncSession) -> dict[str, list[str]]:
    stmt = select(User).options(joinedload(User.posts)).order_by(User.id)
    # A joined collection repeats each user once per post: unique() folds them.
    users = (await session.scalars(stmt)).unique()
    return {user.name: [post.title for post in user.posts] for user in users}


async def posts_with_authors(session: AsyncSession) -> list[tuple[str, str]]:
    stmt = select(Post).options(joinedload(Post.author)).order_by(Post.id)
    posts = await session.scalars(stmt)
    return [(post.title, post.author.name) for post in posts]
