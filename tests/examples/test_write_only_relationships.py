import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from snippets.counting_statements import record_statements
from snippets.write_only_relationships import (
    Feed,
    FeedEntry,
    Inbox,
    InboxMessage,
    deliver_message,
    latest_feed_titles,
    unread_subjects,
)
from tests.support import expect_missing_greenlet

pytestmark = pytest.mark.seed("write_only_relationships:_add_feed_and_inbox")


async def test_iterating_a_dynamic_relationship_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await latest_feed_titles(session)
    assert "FROM feed_entry" in failed.attempted
    assert failed.log.count == 1


#: Every way of getting rows out of a dynamic relationship's Query.
DYNAMIC_READS = {
    "iterate": lambda query: [entry.title for entry in query],
    "all": lambda query: query.all(),
    "first": lambda query: query.first(),
    "count": lambda query: query.count(),
}


@pytest.mark.parametrize("read", DYNAMIC_READS, ids=lambda read: f"read={read}")
async def test_every_dynamic_read_fails_but_touching_it_does_not(
    engine: AsyncEngine, session: AsyncSession, read: str
) -> None:
    feed = await session.scalar(select(Feed))
    with record_statements(engine) as log:
        query = feed.entries  # a legacy Query object; nothing sent yet
    assert log.count == 0
    with expect_missing_greenlet(engine) as failed:
        DYNAMIC_READS[read](query)
    assert "FROM feed_entry" in failed.attempted


async def test_dynamic_relationship_works_only_inside_run_sync(
    session: AsyncSession,
) -> None:
    feed = await session.scalar(select(Feed))

    def titles(session: Session) -> list[str]:
        return [entry.title for entry in feed.entries]

    assert await session.run_sync(titles) == ["2.0 released", "2.1 released"]
    assert FeedEntry.__tablename__ == "feed_entry"


async def test_write_only_select_is_one_awaited_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        subjects = await unread_subjects(session)
    assert subjects == ["Review requested", "Build failed"]
    assert log.count == 2
    # The boolean is compared the database's way: SQLite "IS 0", PostgreSQL "IS false".
    assert re.search(r"inbox_message\.read IS (0|false)\b", log.statements[1].sql)
    assert "LIMIT" in log.statements[1].sql


async def test_write_only_add_inserts_without_loading(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        message_id = await deliver_message(session)
    assert log.count == 2  # the inbox, then the INSERT; the collection never loads
    assert log.statements[1].sql.startswith("INSERT INTO inbox_message")
    stored = await session.get(InboxMessage, message_id)
    assert stored.subject == "Deploy finished"


@pytest.mark.parametrize(
    "method", ["add", "add_all", "remove"], ids=lambda method: f"method={method}"
)
async def test_write_only_changes_are_queued_without_loading(
    engine: AsyncEngine, session: AsyncSession, method: str
) -> None:
    inbox = await session.scalar(select(Inbox).where(Inbox.owner == "ada"))
    # The message to remove, read the write-only way: an explicit, awaited select.
    oldest = await session.scalar(inbox.messages.select().limit(1))
    with record_statements(engine) as log:
        if method == "add":
            inbox.messages.add(InboxMessage(subject="Deploy finished"))
        elif method == "add_all":
            inbox.messages.add_all(
                [
                    InboxMessage(subject="Deploy finished"),
                    InboxMessage(subject="On call"),
                ]
            )
        else:
            inbox.messages.remove(oldest)
        assert log.count == 0  # queued for the flush: nothing sent, nothing loaded
        if method == "remove":
            # remove() detaches the row: it sets inbox_id to NULL, which this
            # mapping's NOT NULL column refuses. It never deletes the message.
            with pytest.raises(IntegrityError):
                await session.flush()
        else:
            await session.flush()
    sent = [statement.sql for statement in log.statements]
    assert not any(sql.startswith("SELECT") for sql in sent)  # nothing loaded
    if method == "remove":
        [sql] = sent
        assert sql.startswith("UPDATE inbox_message SET inbox_id=")
        [parameters] = [statement.parameters for statement in log.statements]
        assert None in tuple(parameters)
        await session.rollback()
        return
    assert all(sql.startswith("INSERT INTO inbox_message") for sql in sent)
    messages = await session.scalars(inbox.messages.select())
    added = ["Deploy finished", "On call"][: 1 if method == "add" else 2]
    assert [message.subject for message in messages][3:] == added


async def test_a_write_only_collection_cannot_be_iterated(
    session: AsyncSession,
) -> None:
    inbox = await session.scalar(select(Inbox))
    with pytest.raises(TypeError, match="don't support iteration in-place"):
        list(inbox.messages)


async def test_counting_a_write_only_collection(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    inbox = await session.scalar(select(Inbox))
    counted = select(func.count()).select_from(inbox.messages.select().subquery())
    with record_statements(engine) as log:
        assert await session.scalar(counted) == 3
    assert log.count == 1
    assert callable(inbox.messages.remove)
