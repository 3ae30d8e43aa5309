import pytest
from sqlalchemy import ForeignKey, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    selectinload,
)

from guide_runtime.capture import capture
from snippets.counting_statements import record_statements
from snippets.models import Post, User
from snippets.new_objects_and_collections import (
    AppendFeed,
    AppendFeedEntry,
    CascadeAllInvoice,
    CascadeAllInvoiceLine,
    CascadeListedInvoice,
    CascadeListedInvoiceLine,
    DataclassPlaylist,
    DataclassTrack,
    add_entry_to_feed,
    add_post_through_many_to_one,
    append_post_after_eager_load,
    append_post_to_unloaded_collection,
    create_playlist_relying_on_default_factory,
    create_playlist_with_explicit_tracks,
    create_user_then_read_posts,
    create_user_with_empty_collections,
    expire_invoice_with_cascade_all,
    expire_invoice_with_listed_cascades,
    read_posts_before_and_after_flush,
    reassign_post_author,
    refresh_invoice_loaded_by_awaitable_attrs,
    replace_unloaded_collection,
)
from snippets.troubleshooting import is_missing_greenlet
from tests.support import expect_missing_greenlet

# --- Point 8: new objects' collections ------------------------------------------


async def test_new_object_without_collection_lazy_loads_after_commit(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await create_user_then_read_posts(session)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1  # the INSERT; the lazy load never got out


async def test_new_object_with_empty_collections_reads_from_memory(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await create_user_with_empty_collections(session) == []
    assert log.count == 1
    assert log.statements[0].sql.startswith("INSERT INTO user_account")


async def test_reading_a_pending_collection_does_not_initialise_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    # 2.1: reading a pending object's collection answers [] but stores nothing.
    pending = User(name="pending")
    assert pending.posts == []
    assert "posts" not in pending.__dict__
    with expect_missing_greenlet(engine) as failed:
        await read_posts_before_and_after_flush(session)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1


@pytest.mark.only_on(
    sqlalchemy="2.1",
    reason="2.1 no longer puts a collection's default_factory value in __dict__",
)
def test_dataclass_default_factory_is_not_applied_at_construction(
    record_capture,
) -> None:
    playlist = DataclassPlaylist(name="focus")
    assert "tracks" not in playlist.__dict__
    explicit = DataclassPlaylist(name="focus", tracks=[DataclassTrack(title="x")])
    assert [track.title for track in explicit.tracks] == ["x"]
    # What the page's example does on this line: the read after commit fails.
    captured = capture(
        "new_objects_and_collections:create_playlist_relying_on_default_factory"
    )
    assert is_missing_greenlet(captured.error)
    record_capture("dataclass-default-factory", str(captured))


@pytest.mark.only_on(
    sqlalchemy="2.0", reason="2.0 stores default_factory values at construction"
)
def test_dataclass_default_factory_is_applied_at_construction_on_20(
    record_capture,
) -> None:
    playlist = DataclassPlaylist(name="focus")
    assert playlist.__dict__["tracks"] == []
    # What the page's example does on this line: the read sends nothing.
    captured = capture(
        "new_objects_and_collections:create_playlist_relying_on_default_factory"
    )
    assert (captured.error, captured.result) == (None, [])
    record_capture("dataclass-default-factory", str(captured))


@pytest.mark.only_on(
    sqlalchemy="2.1",
    reason="2.1 leaves the collection unset, so the read after commit loads it",
)
async def test_dataclass_default_factory_still_lazy_loads_after_commit(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await create_playlist_relying_on_default_factory(session)
    assert "FROM dataclass_track" in failed.attempted
    assert failed.log.count == 1


@pytest.mark.only_on(
    sqlalchemy="2.0",
    reason="2.0 stores the empty list at construction, so the read sends nothing",
)
async def test_dataclass_default_factory_needs_no_load_on_20(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await create_playlist_relying_on_default_factory(session) == []
    assert log.count == 1  # the INSERT


async def test_dataclass_with_explicit_empty_list_sends_only_the_insert(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await create_playlist_with_explicit_tracks(session) == []
    assert log.count == 1


# --- Point 12: writing to relationships of persistent objects --------------------


async def test_append_to_unloaded_collection_loads_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await append_post_to_unloaded_collection(session)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1  # the get(); the collection load failed


async def test_replacing_unloaded_collection_loads_the_old_one(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await replace_unloaded_collection(session)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1


async def test_remove_from_unloaded_collection_loads_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    author = await session.get(User, 1)
    post = await session.get(Post, 1)
    assert author is not None
    with expect_missing_greenlet(engine) as failed:
        author.posts.remove(post)
    assert "FROM post" in failed.attempted
    assert failed.log.count == 0


async def test_append_after_eager_load_sends_three_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await append_post_after_eager_load(session)
    assert titles == ["Notes on engines", "On sessions", "Draft"]
    assert log.count == 3
    assert " IN (" in log.statements[1].sql
    assert log.statements[2].sql.startswith("INSERT INTO post")


async def test_add_through_many_to_one_reads_no_collection(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        post_id = await add_post_through_many_to_one(session)
    assert log.count == 2  # the get() and the INSERT
    assert log.statements[1].sql.startswith("INSERT INTO post")
    author = await session.get(User, 1)
    assert author is not None
    # The collection was never loaded: reading it later is still a query.
    assert "posts" in _unloaded(author)
    assert await session.scalar(select(Post.author_id).where(Post.id == post_id)) == 1


async def test_reassigning_many_to_one_does_not_load_the_old_value(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await reassign_post_author(session) == 2
    assert log.count == 3  # two gets and the UPDATE, no load of the old author
    assert log.statements[2].sql.startswith("UPDATE post SET author_id")


@pytest.mark.seed("new_objects_and_collections:_seed_feed")
async def test_write_only_add_sends_no_load(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with record_statements(engine) as log:
        assert await add_entry_to_feed(session) == ["deployed"]
    assert log.count == 3  # get, INSERT, the explicit select
    assert log.statements[1].sql.startswith("INSERT INTO append_feed_entry")
    assert await session.scalar(select(func.count()).select_from(AppendFeedEntry))
    feed = await session.get(AppendFeed, 1)
    assert feed is not None
    with pytest.raises(TypeError):
        iter(feed.entries)  # a write-only collection cannot be iterated


# --- Point 9: cascade="all" includes refresh-expire ------------------------------


@pytest.mark.seed("new_objects_and_collections:_seed_invoices")
async def test_expire_with_cascade_all_expires_the_lines(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await expire_invoice_with_cascade_all(session)
    assert "FROM cascade_all_invoice_line" in failed.attempted
    assert (
        failed.log.count == 2
    )  # the invoice and its lines; the reload of a line failed


@pytest.mark.seed("new_objects_and_collections:_seed_invoices")
async def test_expire_with_listed_cascades_leaves_the_lines(
    engine: AsyncEngine,
    session: AsyncSession,
) -> None:
    with record_statements(engine) as log:
        items = await expire_invoice_with_listed_cascades(session)
    assert items == ["paper", "ink", "stapler"]
    assert log.count == 2


@pytest.mark.seed("new_objects_and_collections:_seed_invoices")
@pytest.mark.parametrize(
    ("parent", "child", "cascaded"),
    [
        (CascadeAllInvoice, CascadeAllInvoiceLine, 3),
        (CascadeListedInvoice, CascadeListedInvoiceLine, 0),
    ],
    ids=["cascade=all", "cascade=listed"],
)
async def test_refresh_cascades_only_with_refresh_expire(
    engine: AsyncEngine, session: AsyncSession, parent, child, cascaded
) -> None:
    invoice = (
        await session.scalars(select(parent).options(selectinload(parent.lines)))
    ).one()
    expired: list[object] = []

    def on_expire(target: object, attrs: object) -> None:
        expired.append(target)

    event.listen(child, "expire", on_expire)
    try:
        with record_statements(engine) as log:
            await session.refresh(invoice)
    finally:
        event.remove(child, "expire", on_expire)
    assert len(expired) == cascaded
    # 2.1's refresh() reloads the loaded collection in the same call, which
    # repopulates the expired lines: the same statements either way.
    assert log.count == 2
    assert [line.item for line in invoice.lines] == ["paper", "ink", "stapler"]


@pytest.mark.seed("new_objects_and_collections:_seed_invoices")
async def test_refresh_does_not_reload_a_collection_loaded_by_awaitable_attrs(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    invoice = await session.scalar(select(CascadeAllInvoice))
    lines = list(await invoice.awaitable_attrs.lines)
    with record_statements(engine) as log:
        await session.refresh(invoice)
    assert log.count == 1  # the invoice's row only
    assert "lines" in _unloaded(invoice)
    assert all("item" in _unloaded(line) for line in lines)  # refresh-expire
    # The page's example, in full: the held line's next read fails.
    with expect_missing_greenlet(engine) as failed:
        await refresh_invoice_loaded_by_awaitable_attrs(session)
    assert "FROM cascade_all_invoice_line" in failed.attempted


def _unloaded(obj: object) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(obj).unloaded)


def test_cascade_all_means_five_cascades() -> None:
    from sqlalchemy import inspect

    class Base(DeclarativeBase):  # a registry of its own: no table in the guide's
        pass

    class Parent(Base):
        __tablename__ = "cascade_parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        children = relationship("Child", cascade="all")

    class Child(Base):
        __tablename__ = "cascade_child"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int] = mapped_column(ForeignKey("cascade_parent.id"))

    assert set(inspect(Parent).relationships["children"].cascade) == {
        "save-update",
        "merge",
        "refresh-expire",
        "expunge",
        "delete",
    }
    # The page's mappings: "all, delete-orphan", and the cascades listed by name.
    all_lines = inspect(CascadeAllInvoice).relationships["lines"]
    listed_lines = inspect(CascadeListedInvoice).relationships["lines"]
    assert set(all_lines.cascade) == {
        "save-update",
        "merge",
        "refresh-expire",
        "expunge",
        "delete",
        "delete-orphan",
    }
    assert "refresh-expire" not in set(listed_lines.cascade)
    assert set(listed_lines.cascade) == {
        "save-update",
        "merge",
        "delete",
        "delete-orphan",
    }
