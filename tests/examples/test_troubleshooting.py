import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError, MissingGreenlet, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import DetachedInstanceError

from guide_runtime.configurations import sqlalchemy_line
from snippets.counting_statements import record_statements
from snippets.models import User
from snippets.troubleshooting import (
    TroubleshootingBook,
    TroubleshootingShelf,
    TroubleshootingTicket,
    book_titles_on_shelf,
    error_without_greenlet,
    is_missing_greenlet,
    name_after_commit,
    name_from_result,
    name_from_row,
    names_with_query,
    post_titles_after_close,
    post_titles_of_ada,
    post_titles_with_raiseload,
    revision_after_update,
    revision_after_update_refreshed,
    revision_of_new_ticket,
)
from tests.support import (
    POOLS,
    WRAPPED,
    FailedLoad,
    engine_with_pool,
    expect_missing_greenlet,
    pool_as,
    pool_ids,
)

CURSOR_NEVER_AWAITED = "'Connection.cursor' was never awaited"
#: The sentence MissingGreenlet says on each line: 2.0 names await_only().
GREENLET_TEXT = {
    "2.1": "greenlet_spawn has not been called; can't call await_() here. "
    "Was IO attempted in an unexpected place?",
    "2.0": "greenlet_spawn has not been called; can't call await_only() here. "
    "Was IO attempted in an unexpected place?",
}


def assert_missing_greenlet_message(failed: FailedLoad, sql: str) -> None:
    """The message, in this line's shape, and the SQL of the refused load."""
    text = GREENLET_TEXT[sqlalchemy_line()]
    if failed.shape == WRAPPED:
        # The 1.4-era seeds show a bare MissingGreenlet; 2.1 wraps it and adds SQL.
        assert str(failed.error).startswith(f"(sqlalchemy.exc.MissingGreenlet) {text}")
    else:
        assert str(failed.error).startswith(text)
    assert sql in failed.attempted


async def test_lazy_relationship_raises_missing_greenlet(
    engine: AsyncEngine, session: AsyncSession, record_capture
) -> None:
    with expect_missing_greenlet(engine, match=CURSOR_NEVER_AWAITED) as failed:
        await post_titles_of_ada(session)
    assert_missing_greenlet_message(failed, "FROM post")
    assert is_missing_greenlet(failed.error)
    assert failed.log.count == 1
    record_capture("troubleshooting-lazy-relationship", str(failed))


async def test_expired_attribute_raises_missing_greenlet(engine: AsyncEngine) -> None:
    with expect_missing_greenlet(engine, match=CURSOR_NEVER_AWAITED) as failed:
        await name_after_commit(engine)
    assert_missing_greenlet_message(failed, "FROM user_account")
    assert is_missing_greenlet(failed.error)


@pytest.mark.seed("troubleshooting:_seed_ticket")
async def test_server_onupdate_value_raises_missing_greenlet(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine, match=CURSOR_NEVER_AWAITED) as failed:
        await revision_after_update(session)
    assert_missing_greenlet_message(failed, "SELECT troubleshooting_ticket.revision")
    assert is_missing_greenlet(failed.error)


# --- The same failed load, on each kind of pool -----------------------------------


#: What the read after the commit loads: an expired column, or a relationship
#: nobody loaded (of an object a session with expire_on_commit=False kept).
LOADS = {"expired": "FROM user_account", "lazy": "FROM post"}


@pytest.mark.parametrize("load", LOADS, ids=lambda load: f"load={load}")
@pytest.mark.parametrize("pool", POOLS, ids=pool_ids)
async def test_a_failed_load_has_this_shape_on_each_pool(
    tmp_path: Path, pool: str, load: str, record_capture
) -> None:
    async with (
        engine_with_pool(pool, tmp_path) as engine,
        async_sessionmaker(engine, expire_on_commit=load == "expired")() as session,
    ):
        ada = await session.scalar(select(User).where(User.name == "ada"))
        await session.commit()  # the session gives its connection back
        async with pool_as(engine, pool) as checkout:
            with expect_missing_greenlet(
                engine,
                opens_connection=checkout.opens_connection,
                pings=checkout.pings,
            ) as failed:
                ada.name if load == "expired" else ada.posts  # noqa: B018
    # Bare where the checkout needs I/O first (opening or pinging a connection).
    if checkout.does_io:
        assert failed.shape != WRAPPED
    # One check recognises every shape: the advice on the page works on all pools.
    assert is_missing_greenlet(failed.error)
    assert not is_missing_greenlet(StatementError("other", None, {}, ValueError()))
    # A bare MissingGreenlet is an InvalidRequestError; the wrapped one is not.
    assert isinstance(failed.error, InvalidRequestError) == (failed.shape != WRAPPED)
    # Only a load on an open connection builds its SQL: the wrapped shape names it.
    assert (LOADS[load] in str(failed.error)) == (failed.shape == WRAPPED)
    assert failed.log.count == 0  # nothing reached the database
    if load == "expired":
        # The capture names keep the page's: troubleshooting-failed-load-null-pool.
        record_capture(f"troubleshooting-failed-load-{pool}-pool", str(failed))


@pytest.mark.only_on(
    engine="postgresql",
    reason="asyncpg's cursor.execute is refused: a bare MissingGreenlet, after the "
    "statement events saw the SQL, and the refused coroutine is closed (no warning)",
)
@pytest.mark.parametrize(
    ("reproduce", "sql"),
    [
        (post_titles_of_ada, "FROM post"),
        pytest.param(
            revision_after_update,
            "SELECT troubleshooting_ticket.revision",
            marks=pytest.mark.seed("troubleshooting:_seed_ticket"),
        ),
    ],
)
async def test_on_asyncpg_a_failed_load_raises_a_bare_missing_greenlet(
    engine: AsyncEngine, session: AsyncSession, reproduce, sql: str
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await reproduce(session)
    assert type(failed.error) is MissingGreenlet
    assert str(failed.error).startswith(GREENLET_TEXT[sqlalchemy_line()])
    assert "[SQL:" not in str(failed.error)  # the message does not name the SQL
    assert sql in failed.attempted
    assert failed.warned == []


@pytest.mark.seed("troubleshooting:_seed_ticket")
async def test_refresh_fetches_the_server_onupdate_value(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await revision_after_update_refreshed(session) == 2
    assert log.count == 3  # SELECT, UPDATE, the refresh's SELECT


async def test_server_default_on_insert_is_returned_without_a_load(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    # The 1.4 talk needed eager_defaults=True for this; 2.1's default
    # eager_defaults="auto" fetches server defaults with INSERT ... RETURNING.
    assert TroubleshootingTicket.__mapper__.eager_defaults == "auto"
    with record_statements(engine) as log:
        assert await revision_of_new_ticket(session) == 1
    assert log.count == 1
    assert "RETURNING" in log.statements[0].sql


async def test_raiseload_raises_invalid_request_before_any_io(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log, pytest.raises(InvalidRequestError) as raised:
        await post_titles_with_raiseload(session)
    assert str(raised.value) == "'User.posts' is not available due to lazy='raise'"
    assert log.count == 1


@pytest.mark.seed("troubleshooting:_seed_shelf")
async def test_lazy_raise_mapping_raises_the_same_error(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log, pytest.raises(InvalidRequestError) as raised:
        await book_titles_on_shelf(session)
    # The fix the page gives works: load the relationship in the query.
    stmt = select(TroubleshootingShelf).options(
        selectinload(TroubleshootingShelf.books)
    )
    shelf = await session.scalar(stmt)
    assert [book.title for book in shelf.books] == ["SQL"]
    assert str(raised.value) == (
        "'TroubleshootingShelf.books' is not available due to lazy='raise'"
    )
    assert log.count == 1
    assert TroubleshootingBook.__tablename__ == "troubleshooting_book"


async def test_unloaded_relationship_after_close_is_detached(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(DetachedInstanceError) as raised:
        await post_titles_after_close(session_factory)
    assert re.match(
        r"Parent instance <User at 0x[0-9a-f]+> is not bound to a Session; "
        r"lazy load operation of attribute 'posts' cannot proceed",
        str(raised.value),
    )


async def test_loaded_columns_stay_readable_after_close(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    # Why the detached case hides: with expire_on_commit=False, columns survive.
    async with session_factory() as session:
        ada = await session.scalar(select(User).where(User.name == "ada"))
    assert ada.name == "ada"


async def test_result_is_not_an_object(session: AsyncSession) -> None:
    with pytest.raises(AttributeError) as raised:
        await name_from_result(session)
    assert str(raised.value) == "'ChunkedIteratorResult' object has no attribute 'name'"


async def test_entity_row_has_no_column_attributes(session: AsyncSession) -> None:
    # 1.4 said "Could not locate column in row for column 'name'"; 2.1 says "name".
    with pytest.raises(AttributeError) as raised:
        await name_from_row(session)
    assert str(raised.value) == "name"
    assert "Could not locate column" not in str(raised.value)


async def test_async_session_has_no_query(session: AsyncSession) -> None:
    with pytest.raises(AttributeError) as raised:
        await names_with_query(session)
    assert str(raised.value) == "'AsyncSession' object has no attribute 'query'"


@pytest.mark.only_on(
    sqlalchemy="2.1",
    reason="2.1 checks for greenlet when sqlalchemy.ext.asyncio is imported",
)
def test_without_greenlet_the_import_fails_with_install_advice(
    record_capture,
) -> None:
    message = error_without_greenlet()
    assert message.startswith("ImportError: The SQLAlchemy asyncio module requires")
    assert "'greenlet' library is installed" in message
    assert "pip install sqlalchemy[asyncio]" in message
    record_capture("troubleshooting-without-greenlet", message)


@pytest.mark.only_on(
    sqlalchemy="2.0",
    reason="2.0 imports sqlalchemy.ext.asyncio without greenlet; using it fails",
)
def test_without_greenlet_the_first_connect_fails(record_capture) -> None:
    message = error_without_greenlet()
    assert message.startswith(
        "ValueError: the greenlet library is required to use this function."
    )
    record_capture("troubleshooting-without-greenlet", message)


# --- Search on the built site finds each entry -----------------------------------

# The term a reader pastes into the search box, and the entry it must land on.
SEARCH_TERMS = {
    "greenlet_spawn": "missing-greenlet",
    "DetachedInstanceError": "detached-instance",
    "lazy='raise'": "lazy-raise",
}


def _search_index(site: Path) -> dict:
    text = (site / "searchindex.js").read_text()
    return json.loads(text[text.index("(") + 1 : text.rindex(")")])


def _titles_found_by(index: dict, query: str) -> list[tuple[int, str]]:
    """The (page, anchor) pairs Sphinx's searchtools.js returns as title matches.

    It matches a section title when the title contains the whole query and the
    query is at least half as long as the title.
    """
    query = query.lower().strip()
    return [
        (page, anchor)
        for title, found in index["alltitles"].items()
        if query in title.lower() and len(query) >= len(title) / 2
        for page, anchor in found
    ]


@pytest.mark.parametrize(("term", "entry"), SEARCH_TERMS.items())
def test_search_lands_on_the_entry(built_site: Path, term: str, entry: str) -> None:
    index = _search_index(built_site)
    page = index["docnames"].index("guides/troubleshooting")
    [(found_page, anchor)] = _titles_found_by(index, term)
    assert found_page == page
    html = (built_site / "guides" / "troubleshooting.html").read_text()
    [section] = [s for s in html.split("<section ") if f'id="{anchor}"' in s]
    assert f'id="{entry}"' in section
    # The entry shows the captured message, which contains the term itself.
    shown = section.replace("&#x27;", "'").replace("&#39;", "'")
    assert shown.count(term) >= 2, f"{term!r} not in the message of #{entry}"
