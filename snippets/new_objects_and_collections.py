"""Writing objects without reading what was never loaded (IO102, IO204)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    MappedAsDataclass,
    WriteOnlyMapped,
    mapped_column,
    relationship,
    selectinload,
)

from snippets.models import Base, Post, User


# region new_user_without_collections
async def create_user_then_read_posts(session: AsyncSession) -> list[str]:
    user = User(name="hopper")
    session.add(user)
    await session.commit()
    # Broken: `posts` was never set, so after the flush the ORM asks the database.
    return [post.title for post in user.posts]


# endregion new_user_without_collections


# region new_user_with_collections
async def create_user_with_empty_collections(session: AsyncSession) -> list[str]:
    # Empty collections at construction: the ORM knows they are empty.
    user = User(name="hopper", posts=[], roles=[])
    session.add(user)
    await session.commit()
    return [post.title for post in user.posts]


# endregion new_user_with_collections


# region read_while_pending
async def read_posts_before_and_after_flush(session: AsyncSession) -> list[str]:
    user = User(name="hopper")
    session.add(user)
    titles_while_pending = [post.title for post in user.posts]  # [], no SQL
    await session.flush()
    # Broken: that read answered [] without storing it; this one needs a query.
    return titles_while_pending + [post.title for post in user.posts]


# endregion read_while_pending


# region dataclass_mapping
class DataclassPlaylist(MappedAsDataclass, Base):
    __tablename__ = "dataclass_playlist"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    name: Mapped[str] = mapped_column(String(50))
    tracks: Mapped[list[DataclassTrack]] = relationship(
        default_factory=list, order_by="DataclassTrack.id"
    )


class DataclassTrack(MappedAsDataclass, Base):
    __tablename__ = "dataclass_track"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    title: Mapped[str] = mapped_column(String(100))
    playlist_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataclass_playlist.id"), default=None, init=False
    )


# endregion dataclass_mapping


# region dataclass_default
async def create_playlist_relying_on_default_factory(
    session: AsyncSession,
) -> list[str]:
    playlist = DataclassPlaylist(name="focus")
    session.add(playlist)
    await session.commit()
    # Broken on 2.1: default_factory=list no longer fills `tracks` at construction.
    return [track.title for track in playlist.tracks]


# endregion dataclass_default


# region dataclass_explicit
async def create_playlist_with_explicit_tracks(session: AsyncSession) -> list[str]:
    playlist = DataclassPlaylist(name="focus", tracks=[])
    session.add(playlist)
    await session.commit()
    return [track.title for track in playlist.tracks]


# endregion dataclass_explicit


# region append_unloaded
async def append_post_to_unloaded_collection(session: AsyncSession) -> None:
    author = await session.get_one(User, 1)
    # Broken: append() needs the current list first, and loading it is a query.
    author.posts.append(Post(title="Draft"))


# endregion append_unloaded


# region replace_unloaded
async def replace_unloaded_collection(session: AsyncSession) -> None:
    author = await session.get_one(User, 1)
    # Broken: replacing a collection loads the old one to know what was removed.
    author.posts = [Post(title="Draft")]


# endregion replace_unloaded


# region append_eager
async def append_post_after_eager_load(session: AsyncSession) -> list[str]:
    stmt = select(User).where(User.id == 1).options(selectinload(User.posts))
    author = (await session.scalars(stmt)).one()
    author.posts.append(Post(title="Draft"))
    await session.flush()
    return [post.title for post in author.posts]


# endregion append_eager


# region add_through_parent
async def add_post_through_many_to_one(session: AsyncSession) -> int:
    author = await session.get_one(User, 1)
    # Setting the many-to-one side writes the foreign key; no collection is read.
    post = Post(title="Draft", author=author)
    session.add(post)
    await session.flush()
    return post.id


# endregion add_through_parent


# region reassign_author
async def reassign_post_author(session: AsyncSession) -> int:
    post = await session.get_one(Post, 1)
    new_author = await session.get_one(User, 2)
    # A plain many-to-one does not load the old author before replacing it.
    post.author = new_author
    await session.flush()
    return post.author_id


# endregion reassign_author


# region write_only_mapping
class AppendFeed(Base):
    __tablename__ = "append_feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    # Write-only: no attribute access ever loads the collection.
    entries: WriteOnlyMapped[AppendFeedEntry] = relationship(
        order_by="AppendFeedEntry.id"
    )


class AppendFeedEntry(Base):
    __tablename__ = "append_feed_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(200))
    feed_id: Mapped[int] = mapped_column(ForeignKey("append_feed.id"))


# endregion write_only_mapping


# region write_only_add
async def add_entry_to_feed(session: AsyncSession) -> list[str]:
    feed = await session.get_one(AppendFeed, 1)
    feed.entries.add(AppendFeedEntry(body="deployed"))
    await session.flush()
    # Reading is an explicit, awaited query.
    return [entry.body for entry in await session.scalars(feed.entries.select())]


# endregion write_only_add


async def _seed_feed(session: AsyncSession) -> None:
    session.add(AppendFeed(id=1, name="releases"))


# region cascade_mappings
class CascadeAllInvoice(Base):
    __tablename__ = "cascade_all_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(50))
    # "all" = save-update, merge, refresh-expire, expunge, delete.
    lines: Mapped[list[CascadeAllInvoiceLine]] = relationship(
        cascade="all, delete-orphan", order_by="CascadeAllInvoiceLine.id"
    )


class CascadeAllInvoiceLine(Base):
    __tablename__ = "cascade_all_invoice_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(50))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("cascade_all_invoice.id"))


class CascadeListedInvoice(Base):
    __tablename__ = "cascade_listed_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(50))
    # The cascades the code relies on, and not refresh-expire.
    lines: Mapped[list[CascadeListedInvoiceLine]] = relationship(
        cascade="save-update, merge, delete, delete-orphan",
        order_by="CascadeListedInvoiceLine.id",
    )


class CascadeListedInvoiceLine(Base):
    __tablename__ = "cascade_listed_invoice_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(50))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("cascade_listed_invoice.id"))


# endregion cascade_mappings


async def _seed_invoices(session: AsyncSession) -> None:
    items = ["paper", "ink", "stapler"]
    session.add(
        CascadeAllInvoice(
            customer="acme", lines=[CascadeAllInvoiceLine(item=i) for i in items]
        )
    )
    session.add(
        CascadeListedInvoice(
            customer="acme", lines=[CascadeListedInvoiceLine(item=i) for i in items]
        )
    )


# region expire_cascade_all
async def expire_invoice_with_cascade_all(session: AsyncSession) -> list[str]:
    stmt = select(CascadeAllInvoice).options(selectinload(CascadeAllInvoice.lines))
    invoice = (await session.scalars(stmt)).one()
    lines = list(invoice.lines)
    session.expire(invoice)
    # Broken: refresh-expire cascaded, so every line was expired with its invoice.
    return [line.item for line in lines]


# endregion expire_cascade_all


# region expire_cascade_listed
async def expire_invoice_with_listed_cascades(session: AsyncSession) -> list[str]:
    stmt = select(CascadeListedInvoice).options(
        selectinload(CascadeListedInvoice.lines)
    )
    invoice = (await session.scalars(stmt)).one()
    lines = list(invoice.lines)
    session.expire(invoice)
    # The lines keep their loaded state: only the invoice itself was expired.
    return [line.item for line in lines]


# endregion expire_cascade_listed


# region refresh_after_awaitable_attrs
async def refresh_invoice_loaded_by_awaitable_attrs(
    session: AsyncSession,
) -> list[str]:
    invoice = await session.scalar(select(CascadeAllInvoice))
    lines = list(await invoice.awaitable_attrs.lines)
    await session.refresh(invoice)
    # Broken: the query loaded no lines, so the refresh reloads none; it expired
    # them (refresh-expire) and left `lines` unloaded.
    return [line.item for line in lines]


# endregion refresh_after_awaitable_attrs
