"""Large collections: ``lazy="dynamic"`` fails under asyncio; WriteOnlyMapped works.

Serves IO105 (no dynamic relationships).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    DynamicMapped,
    Mapped,
    WriteOnlyMapped,
    mapped_column,
    relationship,
)

from snippets.models import Base


# region dynamic_mapping
class Feed(Base):
    __tablename__ = "feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Legacy: reading feed.entries returns a Query that runs when iterated.
    entries: DynamicMapped[FeedEntry] = relationship(order_by="FeedEntry.id")


class FeedEntry(Base):
    __tablename__ = "feed_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feed.id"))
    title: Mapped[str] = mapped_column(String(200))


# endregion dynamic_mapping


async def latest_feed_titles(session: AsyncSession) -> list[str]:
    feed = await session.scalar(select(Feed))
    # Broken: iterating the dynamic query runs it, outside any await.
    return [entry.title for entry in feed.entries.limit(10)]


# region write_only_mapping
class Inbox(Base):
    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    # Never loaded as a whole: read it with a select(), write it with add().
    messages: WriteOnlyMapped[InboxMessage] = relationship(order_by="InboxMessage.id")


class InboxMessage(Base):
    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id"))
    subject: Mapped[str] = mapped_column(String(200))
    read: Mapped[bool] = mapped_column(default=False)


# endregion write_only_mapping


async def _add_feed_and_inbox(session: AsyncSession) -> None:
    session.add(
        Feed(
            name="releases",
            entries=[FeedEntry(title="2.0 released"), FeedEntry(title="2.1 released")],
        )
    )
    inbox = Inbox(owner="ada")
    session.add(inbox)
    await session.flush()
    inbox.messages.add_all(
        [
            InboxMessage(subject="Welcome", read=True),
            InboxMessage(subject="Review requested"),
            InboxMessage(subject="Build failed"),
        ]
    )


async def unread_subjects(session: AsyncSession) -> list[str]:
    inbox = await session.scalar(select(Inbox).where(Inbox.owner == "ada"))
    # select() builds the statement (WHERE inbox_id = ...); you run it, awaited,
    # with whatever filter, order and limit the page needs.
    stmt = inbox.messages.select().where(InboxMessage.read.is_(False)).limit(20)
    messages = await session.scalars(stmt)
    return [message.subject for message in messages]


async def deliver_message(session: AsyncSession) -> int:
    inbox = await session.scalar(select(Inbox).where(Inbox.owner == "ada"))
    # add() only queues the INSERT for the next flush; nothing is loaded.
    message = InboxMessage(subject="Deploy finished")
    inbox.messages.add(message)
    await session.flush()
    return message.id
