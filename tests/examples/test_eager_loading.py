import functools
import gc
import math
from collections.abc import Iterable
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    joinedload,
    lazyload,
    mapped_column,
    raiseload,
    relationship,
    selectinload,
)

from guide_runtime.capture import round_trip_counts
from guide_runtime.database import fresh_database, session_factory_for
from snippets.counting_statements import record_statements
from snippets.eager_loading import (
    Album,
    AlbumTrack,
    _add_authors_with_posts,
    post_and_comment_texts,
    post_authors_from_identity_map,
    post_authors_not_in_identity_map,
    post_titles_by_author,
    post_titles_by_author_awaited,
    post_titles_by_author_joined,
    post_titles_by_author_lazy,
    post_titles_by_author_run_sync,
    post_titles_by_author_sync,
    posts_with_authors,
    track_listing,
)
from snippets.models import Post, User
from tests.support import expect_missing_greenlet

CURSOR_NEVER_AWAITED = "'Connection.cursor' was never awaited"
EXPECTED_TITLES = {
    "ada": ["Notes on engines", "On sessions"],
    "grace": ["Compilers"],
    "linus": [],
}


async def test_lazy_access_fails_with_missing_greenlet(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine, match=CURSOR_NEVER_AWAITED) as failed:
        await post_titles_by_author_lazy(session)
    # The harness asserts this line's shape (wrapped on 2.1, bare on 2.0).
    assert "FROM post" in failed.attempted
    assert failed.log.count == 1  # only the users query got out


async def test_selectinload_sends_exactly_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_titles_by_author(session) == EXPECTED_TITLES
    assert log.count == 2
    batch = log.statements[1]
    # On both engines: an IN list with one bound parameter per parent (SQLite "?",
    # asyncpg "$1::INTEGER"), not PostgreSQL's "= ANY (array)".
    in_list = batch.sql.split(" IN (", 1)[1].split(")", 1)[0]
    assert len(in_list.split(", ")) == len(batch.parameters) == 3
    assert "ANY" not in batch.sql


async def test_joinedload_sends_exactly_one_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await post_titles_by_author_joined(session) == EXPECTED_TITLES
    assert log.count == 1
    assert "LEFT OUTER JOIN post" in log.statements[0].sql


async def test_joined_collection_without_unique_is_refused(session: AsyncSession):
    result = await session.scalars(select(User).options(joinedload(User.posts)))
    with pytest.raises(InvalidRequestError, match="unique"):
        result.all()


JOINED = select(User).options(joinedload(User.posts)).order_by(User.id)
#: Result methods that return every row, or check that there is exactly one.
ROWS_METHODS = {
    "all": lambda result: result.all(),
    "fetchall": lambda result: result.fetchall(),
    "fetchmany": lambda result: result.fetchmany(2),
    "iteration": list,
    "partitions": lambda result: list(result.partitions()),
    "one": lambda result: result.one(),
    "one_or_none": lambda result: result.one_or_none(),
    "scalar_one": lambda result: result.scalar_one(),
    "scalar_one_or_none": lambda result: result.scalar_one_or_none(),
    "scalars.all": lambda result: result.scalars().all(),
}
#: Result methods that take the first row only.
FIRST_ROW_METHODS = {
    "first": lambda result: result.first()[0],
    "scalar": lambda result: result.scalar(),
    "scalars.first": lambda result: result.scalars().first(),
}


@pytest.mark.parametrize("method", ROWS_METHODS, ids=lambda m: f"method={m}")
async def test_every_method_that_returns_rows_refuses_joined_collections(
    session: AsyncSession, method: str
) -> None:
    result = await session.execute(JOINED)
    with pytest.raises(InvalidRequestError, match=r"The unique\(\) method must"):
        ROWS_METHODS[method](result)
    # With unique(), the same method returns each parent once.
    result = await session.execute(JOINED.where(User.name == "ada"))
    assert ROWS_METHODS[method](result.unique()) is not None


@pytest.mark.parametrize(
    "method",
    [*FIRST_ROW_METHODS, "session.scalar", "session.get"],
    ids=lambda m: f"method={m}",
)
async def test_first_row_methods_return_a_joined_collection_without_unique(
    engine: AsyncEngine, session: AsyncSession, method: str
) -> None:
    with record_statements(engine) as log:
        if method == "session.scalar":
            ada = await session.scalar(JOINED)
        elif method == "session.get":
            ada = await session.get(User, 1, options=[joinedload(User.posts)])
        else:
            ada = FIRST_ROW_METHODS[method](await session.execute(JOINED))
    assert log.count == 1
    # The first parent, with its whole collection: every row of it was read.
    assert ada.name == "ada"
    assert [post.title for post in ada.posts] == EXPECTED_TITLES["ada"]


async def test_joinedload_many_to_one_sends_one_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        rows = await posts_with_authors(session)
    assert rows == [
        ("Notes on engines", "ada"),
        ("On sessions", "ada"),
        ("Compilers", "grace"),
    ]
    assert log.count == 1


async def test_nested_chain_sends_one_statement_per_level(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        texts = await post_and_comment_texts(session)
    assert texts == {
        "ada": {"Notes on engines": ["Clear."], "On sessions": []},
        "grace": {"Compilers": ["More!", "Agreed."]},
        "linus": {},
    }
    assert log.count == 3
    assert "FROM post" in log.statements[1].sql
    assert "FROM comment" in log.statements[2].sql


async def _album_by_get(session: AsyncSession) -> dict[str, list[str]]:
    album = await session.get(Album, 1)
    return {album.title: [track.title for track in album.tracks]}


@pytest.mark.seed("eager_loading:_add_albums")
@pytest.mark.parametrize("query", ["select", "get"], ids=lambda query: f"query={query}")
async def test_selectin_on_the_mapping_needs_no_option(
    engine: AsyncEngine, session: AsyncSession, query: str
) -> None:
    load = {"select": track_listing, "get": _album_by_get}[query]
    with record_statements(engine) as log:
        listing = await load(session)
    blue_train = {"Blue Train": ["Blue Train", "Moment's Notice"]}
    everything = {**blue_train, "Kind of Blue": ["So What"]}
    assert listing == (everything if query == "select" else blue_train)
    assert log.count == 2
    assert "FROM album_track" in log.statements[1].sql
    assert Album.tracks.property.lazy == "selectin"
    assert AlbumTrack.__table__.name == "album_track"


async def test_many_to_one_from_the_identity_map_sends_no_sql(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        rows = await post_authors_from_identity_map(session)
    assert rows == [
        ("Notes on engines", "ada"),
        ("On sessions", "ada"),
        ("Compilers", "grace"),
    ]
    assert log.count == 2  # the users query and the posts query, no lazy loads


async def test_the_identity_map_forgets_users_nobody_references(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    # The identity map holds objects weakly: a discarded result puts nothing there.
    (await session.scalars(select(User))).all()
    posts = (await session.scalars(select(Post).order_by(Post.id))).all()
    with expect_missing_greenlet(engine):
        posts[0].author  # noqa: B018


async def test_the_identity_map_keeps_users_with_unflushed_changes(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    users = (await session.scalars(select(User))).all()
    for user in users:
        user.name = user.name.upper()  # changed, not flushed
    del users, user
    gc.collect()
    with session.no_autoflush:  # the query must not flush the changes
        posts = (await session.scalars(select(Post).order_by(Post.id))).all()
    with record_statements(engine) as log:
        author = posts[0].author  # from the identity map: nobody else holds ada
    assert author.name == "ADA"
    assert log.count == 0

    def users_held() -> list[str]:
        gc.collect()
        return sorted(o.name for o in session.identity_map.values() if type(o) is User)

    assert users_held() == ["ADA", "GRACE", "LINUS"]
    await session.flush()  # unchanged again: held only while referenced
    assert users_held() == ["ADA"]  # posts[0].author references her


class KeyBase(DeclarativeBase):
    """A registry of its own: these tables exist only in this test's database."""


class KeyCountry(KeyBase):
    __tablename__ = "key_country"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(2), unique=True)


class KeyCity(KeyBase):
    __tablename__ = "key_city"

    id: Mapped[int] = mapped_column(primary_key=True)
    country_id: Mapped[int] = mapped_column(ForeignKey("key_country.id"))
    country_code: Mapped[str] = mapped_column(ForeignKey("key_country.code"))
    # The same country twice: by its primary key, and by another unique column.
    by_primary_key: Mapped[KeyCountry] = relationship(
        foreign_keys=[country_id], lazy="select"
    )
    by_unique_column: Mapped[KeyCountry] = relationship(
        foreign_keys=[country_code], lazy="select"
    )


@pytest.mark.parametrize(
    "key", ["primary-key", "unique-column"], ids=lambda key: f"key={key}"
)
async def test_only_a_many_to_one_by_primary_key_is_answered_from_the_identity_map(
    empty_engine: AsyncEngine, key: str
) -> None:
    async with empty_engine.begin() as conn:
        await conn.run_sync(KeyBase.metadata.create_all)
    factory = async_sessionmaker(empty_engine, expire_on_commit=False)
    async with factory() as session:
        session.add(KeyCountry(id=1, code="fr"))
        await session.flush()
        session.add(KeyCity(id=1, country_id=1, country_code="fr"))
        await session.commit()
    async with factory() as session:
        france = await session.get(KeyCountry, 1)  # in the identity map
        city = await session.get(KeyCity, 1)
        if key == "primary-key":
            with record_statements(empty_engine) as log:
                assert city.by_primary_key is france
            assert log.count == 0
        else:
            # The identity map is keyed by primary key: the load must query.
            with expect_missing_greenlet(empty_engine) as failed:
                city.by_unique_column  # noqa: B018
            assert "FROM key_country" in failed.attempted
            assert failed.log.count == 0


async def test_many_to_one_missing_from_the_identity_map_fails(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await post_authors_not_in_identity_map(session)
    assert "FROM user_account" in failed.attempted
    assert failed.log.count == 1


async def test_run_sync_lazy_loads_work_one_round_trip_each(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await post_titles_by_author_run_sync(session)
    assert titles == EXPECTED_TITLES
    assert log.count == 1 + 3  # the users, then one lazy load per user
    assert post_titles_by_author_sync.__name__ == "post_titles_by_author_sync"


async def test_awaitable_attrs_in_a_loop_is_one_round_trip_per_user(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await post_titles_by_author_awaited(session)
    assert titles == EXPECTED_TITLES
    assert log.count == 1 + 3


STRATEGIES = {
    "run_sync": post_titles_by_author_run_sync,
    "awaited": post_titles_by_author_awaited,
    "selectinload": post_titles_by_author,
    "joinedload": post_titles_by_author_joined,
}


async def _statements_per_strategy(
    parents: int, names: Iterable[str] = tuple(STRATEGIES)
) -> dict[str, int]:
    seed = functools.partial(_add_authors_with_posts, parents=parents)
    counts = {}
    async with fresh_database(seed) as engine:
        for name in names:
            strategy = STRATEGIES[name]
            async with session_factory_for(engine)() as session:
                with record_statements(engine) as log:
                    titles = await strategy(session)
            assert len(titles) == parents
            assert titles["author 1"] == ["post 1.1", "post 1.2"]
            counts[name] = log.count
    return counts


def _expected_counts(parents: int) -> dict[str, int]:
    return {
        # The loops grow with the data...
        "run_sync": parents + 1,
        "awaited": parents + 1,
        # ...the eager loads do not: one join, or one IN (...) per 500 parents.
        "joinedload": 1,
        "selectinload": 1 + math.ceil(parents / 500),
    }


@pytest.mark.parametrize("parents", [10, 100], ids=lambda n: f"parents={n}")
async def test_round_trips_as_the_parents_grow(parents: int) -> None:
    counts = await _statements_per_strategy(parents)
    assert counts == _expected_counts(parents)


@pytest.mark.parametrize("parents", [3, 500, 501, 1001], ids=lambda n: f"parents={n}")
async def test_selectinload_sends_one_in_list_per_500_parents(parents: int) -> None:
    counts = await _statements_per_strategy(parents, names=["selectinload"])
    # The parents' query, then one SELECT ... IN per batch of 500 primary keys.
    assert counts == {"selectinload": 1 + math.ceil(parents / 500)}


def test_the_pages_round_trip_table_follows_the_same_counts(built_site: Path) -> None:
    # The page's table is run by the build (its 1000-parent column, a few seconds,
    # once, then stored by content); here it is held to the same counts.
    page = (built_site / "guides" / "eager-loading.html").read_text()
    table = BeautifulSoup(page, "html.parser").select_one("table.round-trips")
    sizes = [int(th.get_text().split()[0]) for th in table.select("thead th")[1:]]
    assert sizes == [10, 100, 1000]
    shown = {
        row.select("td")[0].get_text(): [int(td.get_text()) for td in row("td")[1:]]
        for row in table.select("tbody tr")
    }
    labels = {
        "run_sync": "Lazy loads inside run_sync",
        "awaited": "awaitable_attrs in a loop",
        "selectinload": "selectinload",
        "joinedload": "joinedload",
    }
    assert shown == {
        label: [_expected_counts(size)[name] for size in sizes]
        for name, label in labels.items()
    }


async def test_recommended_strategies_are_constant_up_to_a_batch() -> None:
    # The loops' growth is test_round_trips_as_the_parents_grow's: here only the
    # eager loads run at 400 parents (the loops would send 802 statements).
    recommended = ("joinedload", "selectinload")
    small, large = (
        await _statements_per_strategy(10, recommended),
        await _statements_per_strategy(400, recommended),
    )
    assert small["joinedload"] == large["joinedload"] == 1
    assert small["selectinload"] == large["selectinload"] == 2


def test_the_round_trip_table_is_measured() -> None:
    targets = [
        "eager_loading:post_titles_by_author_run_sync",
        "eager_loading:post_titles_by_author",
    ]
    counts = round_trip_counts(
        "eager_loading:_add_authors_with_posts", targets, [5, 20]
    )
    assert counts == [[6, 21], [2, 2]]


def test_the_round_trip_table_refuses_strategies_that_disagree() -> None:
    targets = [
        "eager_loading:post_titles_by_author",
        "eager_loading:posts_with_authors",
    ]
    with pytest.raises(ValueError, match="returned different values"):
        round_trip_counts("eager_loading:_add_authors_with_posts", targets, [3])


def test_the_round_trip_table_needs_a_sized_seed() -> None:
    with pytest.raises(ValueError, match="must take a 'parents' argument"):
        round_trip_counts(
            "eager_loading:_add_albums", ["eager_loading:track_listing"], [3]
        )


def test_the_round_trip_table_is_on_the_page(built_site) -> None:
    page = (built_site / "guides" / "eager-loading.html").read_text()
    table = page[page.index('class="round-trips') :]
    table = table[: table.index("</table>")]
    assert "1000 parents" in table
    assert "<p>1001</p>" in table  # N + 1 at 1000 parents, measured in the build
    assert "<p>3</p>" in table  # selectinload's second batch


async def test_each_link_of_a_chain_picks_its_strategy(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    stmt = select(User).options(selectinload(User.posts).joinedload(Post.author))
    with record_statements(engine) as log:
        users = (await session.scalars(stmt)).all()
        authors = {post.author.name for user in users for post in user.posts}
    assert authors == {"ada", "grace"}
    assert log.count == 2
    assert "LEFT OUTER JOIN user_account" in log.statements[1].sql


async def test_a_link_the_chain_does_not_name_stays_lazy(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    stmt = select(User).where(User.name == "ada").options(selectinload(User.posts))
    user = await session.scalar(stmt)
    with expect_missing_greenlet(engine) as failed:
        user.posts[0].comments  # noqa: B018
    assert "FROM comment" in failed.attempted


@pytest.mark.seed("eager_loading:_add_albums")
@pytest.mark.parametrize("option", [lazyload, raiseload])
async def test_a_query_can_opt_out_of_lazy_selectin(
    engine: AsyncEngine, session: AsyncSession, option
) -> None:
    with record_statements(engine) as log:
        stmt = select(Album).options(option(Album.tracks))
        albums = (await session.scalars(stmt)).all()
        assert "tracks" not in albums[0].__dict__
    assert log.count == 1


@pytest.mark.parametrize(
    ("sql_only", "allowed"), [(False, False), (True, True)], ids=["raise", "on_sql"]
)
async def test_identity_map_hits_and_the_raise_strategies(
    session: AsyncSession, sql_only: bool, allowed: bool
) -> None:
    users = (await session.scalars(select(User))).all()
    stmt = select(Post).options(raiseload(Post.author, sql_only=sql_only))
    posts = (await session.scalars(stmt)).all()
    if allowed:
        assert {post.author.name for post in posts} == {"ada", "grace"}
    else:
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            posts[0].author  # noqa: B018
    assert len(users) == 3


async def test_joinedload_of_a_collection_with_limit_wraps_the_parents_in_a_subquery(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    stmt = select(User).options(joinedload(User.posts)).order_by(User.id).limit(2)
    with record_statements(engine) as log:
        users = (await session.scalars(stmt)).unique().all()
    assert [user.name for user in users] == ["ada", "grace"]
    [sql] = [statement.sql for statement in log.statements]
    # The LIMIT applies to the users, inside a subquery the posts are joined to.
    assert "FROM (SELECT" in sql
    assert sql.index("LIMIT") < sql.index("LEFT OUTER JOIN post")
