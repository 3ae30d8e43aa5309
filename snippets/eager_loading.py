"""Loading relationships up front, inside the awaited query (IO101)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from snippets.models import Base, Post, User


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


async def post_and_comment_texts(
    session: AsyncSession,
) -> dict[str, dict[str, list[str]]]:
    # Each link of the chain is one more SELECT ... IN, whatever the row count.
    stmt = (
        select(User)
        .options(selectinload(User.posts).selectinload(Post.comments))
        .order_by(User.id)
    )
    users = await session.scalars(stmt)
    return {
        user.name: {
            post.title: [comment.text for comment in post.comments]
            for post in user.posts
        }
        for user in users
    }


# region selectin_mapping
class Album(Base):
    __tablename__ = "album"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    # Every query for albums loads their tracks, with no option to forget.
    tracks: Mapped[list[AlbumTrack]] = relationship(
        lazy="selectin", order_by="AlbumTrack.position"
    )


class AlbumTrack(Base):
    __tablename__ = "album_track"

    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("album.id"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(100))


async def track_listing(session: AsyncSession) -> dict[str, list[str]]:
    albums = await session.scalars(select(Album).order_by(Album.id))
    return {album.title: [track.title for track in album.tracks] for album in albums}


# endregion selectin_mapping


async def _add_albums(session: AsyncSession) -> None:
    session.add_all(
        [
            Album(
                title="Blue Train",
                tracks=[
                    AlbumTrack(position=1, title="Blue Train"),
                    AlbumTrack(position=2, title="Moment's Notice"),
                ],
            ),
            Album(
                title="Kind of Blue", tracks=[AlbumTrack(position=1, title="So What")]
            ),
        ]
    )


async def post_authors_from_identity_map(
    session: AsyncSession,
) -> list[tuple[str, str]]:
    # Loading the users first puts every author in the session's identity map...
    users = (await session.scalars(select(User).order_by(User.id))).all()
    stmt = (
        select(Post)
        .where(Post.author_id.in_([user.id for user in users]))
        .order_by(Post.id)
    )
    posts = await session.scalars(stmt)
    # ...so each post.author is found there by primary key: no SQL, no error.
    return [(post.title, post.author.name) for post in posts]


async def post_authors_not_in_identity_map(
    session: AsyncSession,
) -> list[tuple[str, str]]:
    posts = await session.scalars(select(Post).order_by(Post.id))
    # Broken: no author is in the session yet, so post.author needs a query.
    return [(post.title, post.author.name) for post in posts]


# region strategies_compared
def post_titles_by_author_sync(session: Session) -> dict[str, list[str]]:
    """Legacy synchronous code: every ``user.posts`` is a lazy load."""
    users = session.scalars(select(User).order_by(User.id))
    return {user.name: [post.title for post in user.posts] for user in users}


async def post_titles_by_author_run_sync(
    session: AsyncSession,
) -> dict[str, list[str]]:
    # Works under run_sync, but each lazy load is still a round trip.
    return await session.run_sync(post_titles_by_author_sync)


async def post_titles_by_author_awaited(
    session: AsyncSession,
) -> dict[str, list[str]]:
    users = (await session.scalars(select(User).order_by(User.id))).all()
    # Correct, and one query per user: see IO106.
    return {
        user.name: [post.title for post in await user.awaitable_attrs.posts]
        for user in users
    }


# endregion strategies_compared


async def _add_authors_with_posts(session: AsyncSession, parents: int) -> None:
    """``parents`` users with two posts each, inserted in bulk so seeding is fast."""
    await session.execute(
        insert(User), [{"id": n, "name": f"author {n}"} for n in range(1, parents + 1)]
    )
    await session.execute(
        insert(Post),
        [
            {"author_id": n, "title": f"post {n}.{part}"}
            for n in range(1, parents + 1)
            for part in (1, 2)
        ],
    )
