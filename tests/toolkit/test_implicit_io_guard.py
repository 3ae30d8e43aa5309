import logging
import warnings

import pytest
from sqlalchemy import create_engine, delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.util import greenlet_spawn

from guide_runtime.database import fresh_database
from implicit_io.guard import (
    GUARD_RULES,
    MODE_OPTION,
    AllowedLoadCannotRunError,
    GuardAlreadyInstalledError,
    ImplicitIOError,
    ImplicitIOGuard,
    ImplicitLoad,
    KnownException,
    Mode,
    _origin,
    explain_detached,
    guard_mode,
    parse_mode,
)
from implicit_io.rule_links import KNOWN_RULES, rule_url
from snippets import enforcement
from snippets.counting_statements import record_statements
from snippets.enforcement import CASES, _Case
from snippets.mapping_check import LegacyBase, LegacyCustomer
from snippets.models import Base, Comment, Post, User, sample_users
from tests.support import expect_missing_greenlet

ON_PYSQLITE = pytest.mark.only_on(
    engine="sqlite",
    reason="sync sessions are shown on pysqlite; the suite installs no sync "
    "PostgreSQL driver",
)

EXPECTED = {
    "lazy one-to-many": ("IO102", "User.posts"),
    "lazy many-to-one, identity-map miss": ("IO102", "Post.author"),
    "expired attribute after commit": ("IO201", "User.name"),
    "deferred column": ("IO107", "EnforcedArticle.body"),
    "server_onupdate column after flush": ("IO203", "EnforcedArticle.revision"),
    "N+1 via awaitable_attrs in a loop": ("IO106", "User.posts"),
    "N+1 inside run_sync": ("IO101", "User.roles"),
}
IMPLICIT = [case for case in CASES if case.label in EXPECTED]
CLEAN = [case for case in CASES if not case.should_report]


def guarded(engine: AsyncEngine, case: _Case, guard: ImplicitIOGuard):
    factory = async_sessionmaker(engine, expire_on_commit=case.expire_on_commit)
    guard.install(factory)
    return factory


@pytest.mark.parametrize("case", IMPLICIT, ids=lambda case: case.label)
async def test_enforce_raises_before_any_io(case: _Case) -> None:
    rule, attribute = EXPECTED[case.label]
    async with fresh_database(case.seed) as engine:
        guard = ImplicitIOGuard("enforce", docs_base_url="https://docs.test/")
        async with guarded(engine, case, guard)() as session:
            with (
                warnings.catch_warnings(),
                record_statements(engine) as log,
                pytest.raises(ImplicitIOError) as raised,
            ):
                warnings.simplefilter("error")  # no un-awaited driver coroutine
                await case.scenario(session)
    error = raised.value
    assert (error.rule, error.attribute) == (rule, attribute)
    assert error.docs_url == rule_url(rule, "https://docs.test/")
    assert error.call_site.startswith("snippets/enforcement.py:")
    # The line that read the attribute: inside the function run_sync ran, if any.
    function = "role_counts" if "run_sync" in case.label else case.scenario.__name__
    assert error.call_site.endswith(f" in {function}")
    assert str(error).startswith(f"{rule} ") and attribute in str(error)
    assert guard.counts == {(rule, attribute): 1}
    # The refused load never reached the database.
    assert not any("LIMIT" in s.sql and attribute in s.sql for s in log.statements)


async def test_enforce_refuses_the_lazy_load_statement_itself(engine: AsyncEngine):
    factory = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(factory)
    async with factory() as session:
        user = await session.scalar(select(User).where(User.name == "ada"))
        with record_statements(engine) as log, pytest.raises(ImplicitIOError):
            _ = user.posts
    assert log.count == 0


@pytest.mark.parametrize("case", CLEAN, ids=lambda case: case.label)
async def test_clean_code_is_not_flagged(case: _Case) -> None:
    async with fresh_database(case.seed) as engine:
        guard = ImplicitIOGuard("enforce")
        async with guarded(engine, case, guard)() as session:
            assert await case.scenario(session)
    assert guard.counts == {}


async def test_track_logs_a_structured_record_and_counts(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("track")
    guard.install(factory)
    async with factory() as session:
        with (
            expect_missing_greenlet(engine),
            caplog.at_level(logging.WARNING, logger="implicit_io"),
        ):
            await enforcement.lazy_one_to_many(session)
    # Track mode does not change behaviour: asyncio still refuses the load (the
    # harness asserts the refusal in this line's shape).
    [record] = caplog.records
    assert record.rule == "IO102"
    assert record.attribute == "User.posts"
    assert record.call_site.startswith("snippets/enforcement.py:")
    assert record.docs_url == rule_url("IO102")
    assert record.getMessage() == str(
        ImplicitLoad(
            "IO102",
            "implicit lazy load of a relationship",
            "User.posts",
            record.call_site,
            rule_url("IO102"),
        )
    )
    assert guard.counts == {("IO102", "User.posts"): 1}


async def test_track_lets_working_code_run_and_counts_the_n_plus_one(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard(Mode.TRACK)
    guard.install(factory)
    async with factory() as session:
        with caplog.at_level(logging.WARNING, logger="implicit_io"):
            posts = await enforcement.awaitable_attrs_in_a_loop(session)
    assert posts == {"ada": 2, "grace": 1, "linus": 0}
    assert [r.rule for r in caplog.records] == ["IO106"]  # once per session
    assert guard.counts == {("IO106", "User.posts"): 1}


async def test_an_n_plus_one_in_a_librarys_greenlet_spawn_is_not_named_run_sync(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # fastapi-pagination builds its pages in greenlet_spawn(), so a response
    # model's lazy relationship loads there, one query per row, with no run_sync
    # in the code: the report says which of the two ran the loop.
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard(Mode.TRACK)
    guard.install(factory)
    async with factory() as session:
        users = (await session.scalars(select(User).order_by(User.id))).all()
        with caplog.at_level(logging.WARNING, logger="implicit_io"):
            roles = await greenlet_spawn(lambda: [len(user.roles) for user in users])
            await session.run_sync(lambda _: [len(user.posts) for user in users])
    assert len(roles) == 3
    assert [r.getMessage().split(" at ")[0] for r in caplog.records] == [
        "IO101 N+1 lazy loads inside greenlet_spawn: User.roles",
        "IO101 N+1 lazy loads inside run_sync: User.posts",
    ]


async def test_off_mode_reports_nothing(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("off")
    guard.install(factory)
    async with factory() as session:
        await enforcement.awaitable_attrs_in_a_loop(session)
    assert guard.counts == {}


async def test_modes_per_factory_block_and_session(engine: AsyncEngine) -> None:
    requests = async_sessionmaker(engine, expire_on_commit=False)
    workers = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(requests)
    worker_guard = ImplicitIOGuard("track")
    worker_guard.install(workers)
    async with requests() as session:
        with pytest.raises(ImplicitIOError):
            await enforcement.awaitable_attrs_in_a_loop(session)
    async with workers() as session:
        await enforcement.awaitable_attrs_in_a_loop(session)  # tracked, runs
    # A block tightens a tracked factory; the block ends, tracking resumes.
    async with workers() as session:
        with guard_mode("enforce"), pytest.raises(ImplicitIOError):
            await enforcement.awaitable_attrs_in_a_loop(session)
    # One session opts out or in (session.info, on every SQLAlchemy 2 release).
    async with requests(info={MODE_OPTION: "off"}) as session:
        await enforcement.awaitable_attrs_in_a_loop(session)
    async with workers(info={MODE_OPTION: "enforce"}) as session:
        with pytest.raises(ImplicitIOError):
            await enforcement.awaitable_attrs_in_a_loop(session)
    assert worker_guard.counts[("IO106", "User.posts")] == 3


@pytest.mark.only_on(
    sqlalchemy="2.1", reason="Session(execution_options=...) is new in 2.1"
)
async def test_a_session_execution_option_chooses_the_mode(engine: AsyncEngine):
    requests = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(requests)
    async with requests(execution_options={MODE_OPTION: "off"}) as session:
        await enforcement.awaitable_attrs_in_a_loop(session)


async def test_allow_list_lets_a_documented_exception_through(engine: AsyncEngine):
    exception = KnownException(
        "IO106", "User.posts", "Admin export, at most 20 users; ticket OPS-12."
    )
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("enforce", allow=[exception])
    guard.install(factory)
    async with factory() as session:
        assert await enforcement.awaitable_attrs_in_a_loop(session)
        with pytest.raises(ImplicitIOError, match="IO101"):
            await enforcement.lazy_loads_inside_run_sync(session)
    assert guard.allowed_counts == {("IO106", "User.posts"): 1}


@ON_PYSQLITE
def test_guard_works_on_sync_sessions_too() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    ImplicitIOGuard("enforce").install(factory)
    with factory() as session:
        session.add_all(sample_users())
        session.commit()
    with factory() as session:
        user = session.scalar(select(User).where(User.name == "ada"))
        with pytest.raises(ImplicitIOError, match=r"IO102 .*User\.roles"):
            _ = user.roles  # a plain lazy load: implicit I/O in sync code too
        session.commit()
        with pytest.raises(ImplicitIOError, match=r"IO201 .*User\.name"):
            _ = user.name  # expired by the commit
    engine.dispose()


@ON_PYSQLITE
def test_expire_then_plain_read_is_io204() -> None:
    """The rule pages of IO204 say the guard names expire() as the cause."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(factory)
    with factory() as session:
        session.add_all(sample_users())
        session.commit()
        ada, grace = session.scalars(select(User).order_by(User.id).limit(2))
        session.expire(ada)  # the whole object
        with pytest.raises(ImplicitIOError, match=r"IO204 .*User\.name"):
            _ = ada.name
        session.expire(grace, ["name"])  # one attribute
        with pytest.raises(ImplicitIOError, match=r"IO204 .*User\.name"):
            _ = grace.name
    expiring = sessionmaker(engine)  # expire_on_commit=True
    ImplicitIOGuard("enforce").install(expiring)
    with expiring() as session:
        ada = session.scalar(select(User).where(User.name == "ada"))
        session.expire(ada)  # expire(), even where commits expire everything too
        with pytest.raises(ImplicitIOError, match=r"IO204 .*User\.name"):
            _ = ada.name
    engine.dispose()


# A read of one object's attribute that loads another object's expired columns:
# ``post.author`` finds the author in the identity map, expired by the commit, and
# reloads its row. The guard took the key read (``author``) for an attribute of
# the author's and failed with KeyError: 'author' (sqlalchemy-mixins' suite).
@ON_PYSQLITE
def test_a_read_that_reloads_another_objects_columns_names_that_object() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)  # expire_on_commit=True
    loads: list[ImplicitLoad] = []
    ImplicitIOGuard("track", on_load=loads.append).install(factory)
    with factory() as session:
        session.add_all(sample_users())
        session.commit()
        post = session.scalar(select(Post).where(Post.title == "On sessions"))
        author = post.author  # the author is in the identity map now
        session.commit()  # expires the post and its author
        _ = post.title
        loads.clear()
        assert post.author is author  # reloads the author's expired row
    assert [(load.rule, load.attribute) for load in loads] == [("IO201", "User.id")]
    engine.dispose()


async def test_an_expired_related_object_reloaded_by_a_read_is_refused(
    engine: AsyncEngine,
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    ImplicitIOGuard("enforce").install(factory)
    async with factory() as session:
        post = await session.scalar(select(Post).where(Post.title == "On sessions"))
        author = await session.get(User, post.author_id)
        session.expire(author)  # the expired row is the point
        with pytest.raises(ImplicitIOError, match=r"IO204 .*: User\.id at "):
            _ = post.author  # the author's expired row: no await to reload it in


async def test_refresh_is_explicit_with_or_without_names(engine: AsyncEngine) -> None:
    """IO202 is left to review: the guard accepts a full refresh() too."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("enforce")
    guard.install(factory)
    async with factory() as session:
        query = select(User).where(User.name == "ada").options(selectinload(User.posts))
        user = await session.scalar(query)
        with record_statements(engine) as log:
            await session.refresh(user)  # the row, and the eager load again
            await session.refresh(user, ["roles"])  # the row, and the roles
    assert log.count == 4
    assert guard.counts == {}


@ON_PYSQLITE
def test_dynamic_relationship_reads_are_not_classified() -> None:
    """A dynamic relationship sends an ordinary query: the guard has no code for it."""
    engine = create_engine("sqlite://")
    LegacyBase.metadata.create_all(engine)
    factory = sessionmaker(engine)
    guard = ImplicitIOGuard("enforce")
    guard.install(factory)
    with factory() as session:
        customer = LegacyCustomer()
        session.add(customer)
        session.flush()
        with record_statements(engine) as log:
            assert customer.notes.all() == []
    assert log.count == 1
    assert guard.counts == {}
    engine.dispose()


# --- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["strict", "", "ENFORCE"])
def test_unknown_mode_is_refused(mode: str) -> None:
    message = "unknown implicit-I/O guard mode .*; use one of off, track, enforce"
    with pytest.raises(ValueError, match=message):
        ImplicitIOGuard(mode)
    with pytest.raises(ValueError, match=message), guard_mode(mode):
        pass
    with pytest.raises(ValueError, match=message):
        parse_mode(mode)


async def test_unknown_mode_in_a_session_option_is_refused(engine: AsyncEngine):
    factory = async_sessionmaker(engine)
    ImplicitIOGuard().install(factory)
    async with factory(info={MODE_OPTION: "loud"}) as session:
        user = await session.scalar(select(User))
        with pytest.raises(ValueError, match="unknown implicit-I/O guard mode 'loud'"):
            await user.awaitable_attrs.posts


def test_unknown_rule_code_in_the_allow_list_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule code 'IO999'"):
        KnownException("IO999", "User.posts", "because")
    with pytest.raises(ValueError, match="give the rationale"):
        KnownException("IO106", "User.posts", "  ")


def test_installing_twice_is_refused(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    ImplicitIOGuard().install(factory)
    with pytest.raises(GuardAlreadyInstalledError, match="already has"):
        ImplicitIOGuard("enforce").install(factory)
    sync_factory = sessionmaker()
    ImplicitIOGuard().install(sync_factory)
    with pytest.raises(GuardAlreadyInstalledError):
        ImplicitIOGuard().install(sync_factory)
    with pytest.raises(TypeError, match="session factory"):
        ImplicitIOGuard().install(Session)


def test_every_guard_rule_has_a_page() -> None:
    assert KNOWN_RULES.keys() >= GUARD_RULES
    assert {rule for rule, _ in EXPECTED.values()} <= GUARD_RULES


async def test_load_flags_are_what_the_guard_page_says(engine: AsyncEngine) -> None:
    """The table on the guard page, observed on this SQLAlchemy."""
    seen: list[tuple[bool, bool, str]] = []

    def observe(state) -> None:
        loads = state.lazy_loaded_from is not None or state.is_column_load
        if loads or state.is_relationship_load:
            seen.append(
                (state.lazy_loaded_from is not None, state.is_column_load, _origin())
            )

    class ObservedSession(Session):
        pass

    event.listen(ObservedSession, "do_orm_execute", observe)
    factory = async_sessionmaker(
        engine, expire_on_commit=False, sync_session_class=ObservedSession
    )

    async def flags_of(action) -> list[tuple[bool, bool, str]]:
        seen.clear()
        await action()
        return list(seen)

    async with factory() as session:
        users = (await session.scalars(select(User).order_by(User.id))).all()
        ada = users[0]
        async with factory() as other:
            query = select(User).options(selectinload(User.posts))
            assert await flags_of(lambda: other.scalars(query)) == [
                (False, False, "sqlalchemy")
            ]
        assert await flags_of(lambda: ada.awaitable_attrs.posts) == [
            (True, False, "awaitable_attrs")
        ]
        session.expire(ada, ["name"])
        assert await flags_of(lambda: ada.awaitable_attrs.name) == [
            (False, True, "awaitable_attrs")
        ]
        assert await flags_of(lambda: session.refresh(ada, ["roles"])) == [
            (False, True, "sqlalchemy"),
            (True, False, "sqlalchemy"),
        ]
        assert await flags_of(lambda: session.run_sync(lambda _: users[1].roles)) == [
            (True, False, "run_sync")
        ]
        seen.clear()
        with expect_missing_greenlet(engine):
            _ = users[2].posts
        assert seen == [(True, False, "implicit")]


async def _query(session, ada, comment) -> None:
    await session.execute(select(User.id))


async def _lazy_load(session, ada, comment) -> None:
    await ada.awaitable_attrs.posts


async def _expired_reload(session, ada, comment) -> None:
    session.expire(ada, ["name"])
    await ada.awaitable_attrs.name


async def _refresh(session, ada, comment) -> None:
    await session.refresh(ada, ["name"])


async def _orm_update(session, ada, comment) -> None:
    await session.execute(update(User).where(User.id == ada.id).values(name="Ada"))


async def _flush_insert(session, ada, comment) -> None:
    session.add(User(name="barbara"))
    await session.flush()


async def _flush_update(session, ada, comment) -> None:
    ada.name = "Ada"
    await session.flush()


async def _flush_delete(session, ada, comment) -> None:
    await session.delete(comment)
    await session.flush()


#: statement: (what runs it, whether do_orm_execute sees it, the SQL it starts with)
ORM_STATEMENTS = {
    "query": (_query, True, "SELECT"),
    "lazy-load": (_lazy_load, True, "SELECT"),
    "expired-reload": (_expired_reload, True, "SELECT"),
    "refresh": (_refresh, True, "SELECT"),
    "orm-update": (_orm_update, True, "UPDATE"),
    "flush-insert": (_flush_insert, False, "INSERT"),
    "flush-update": (_flush_update, False, "UPDATE"),
    "flush-delete": (_flush_delete, False, "DELETE"),
}


@pytest.mark.parametrize("statement", ORM_STATEMENTS, ids=lambda s: f"statement={s}")
async def test_do_orm_execute_sees_each_load_before_its_connection_and_no_flush(
    engine: AsyncEngine, statement: str
) -> None:
    run, seen_by_the_event, verb = ORM_STATEMENTS[statement]
    connections: list[object] = []
    event.listen(engine.sync_engine, "engine_connect", connections.append)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        ada = await session.scalar(select(User).where(User.name == "ada"))
        comment = await session.scalar(select(Comment).limit(1))
        await session.commit()  # the session holds no connection now
        events: list[int] = []  # connections opened so far, at each event

        @event.listens_for(session.sync_session, "do_orm_execute")
        def seen(state) -> None:
            events.append(len(connections))

        before = len(connections)
        with record_statements(engine) as log:
            await run(session, ada, comment)
    assert log.statements[0].sql.startswith(verb), log.statements
    assert len(connections) == before + 1  # the statement needed a connection
    if seen_by_the_event:
        # The event came first, before the session asked the engine for one.
        assert events[0] == before
    else:
        # The unit of work's INSERT/UPDATE/DELETE never pass through the event.
        assert events == []


async def test_orm_update_and_delete_pass_through_the_guard(engine: AsyncEngine):
    factory = async_sessionmaker(engine, expire_on_commit=False)
    guard = ImplicitIOGuard("enforce")
    guard.install(factory)
    async with factory() as session:
        await session.execute(update(User).values(name=User.name + "!"))
        await session.execute(delete(Comment))
        names = (await session.scalars(select(User.name).order_by(User.id))).all()
    assert names == ["ada!", "grace!", "linus!"]
    assert guard.counts == {}


def test_the_findings_region_names_what_an_accepted_load_cannot_do() -> None:
    """The full behaviour is in tests/toolkit/test_guard_call_site.py and
    tests/toolkit/test_guard_more_causes.py; here the names the page shows."""
    load = ImplicitLoad("IO102", "kind", "User.posts", "app.py:3 in f", "/r/io102")
    error = AllowedLoadCannotRunError(load, "allow-listed (IO401)")
    assert isinstance(error, ImplicitIOError)
    assert str(error).startswith(
        "IO102 kind: User.posts at app.py:3 in f is allow-listed (IO401), but "
        "cannot run here"
    )
    assert explain_detached(error) is None
    assert load.location == "app.py:3"
