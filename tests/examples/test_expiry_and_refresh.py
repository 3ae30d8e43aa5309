import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import ForeignKey, func, inspect, select, update
from sqlalchemy.exc import SADeprecationWarning
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    lazyload,
    mapped_column,
    relationship,
    selectinload,
)

from guide_runtime.configurations import sqlalchemy_line
from snippets.counting_statements import record_statements
from snippets.expiry_and_refresh import (
    _query_again_without_populate_existing,
    load_posts_by_refresh,
    make_session_factory,
    read_after_expire,
    read_after_expire_all,
    read_after_rollback,
    refresh_user_name,
    reload_users_in_one_query,
    reload_whole_report,
    reload_whole_user,
    rename_user,
    rename_user_default_session,
)
from snippets.models import User
from snippets.new_objects_and_collections import CascadeAllInvoice
from snippets.troubleshooting import TroubleshootingTicket
from tests.support import expect_missing_greenlet, without_labels


async def test_default_session_expires_on_commit(engine: AsyncEngine) -> None:
    with expect_missing_greenlet(engine) as failed:
        await rename_user_default_session(engine)
    assert "SELECT user_account.id, user_account.name" in without_labels(
        failed.attempted
    )
    assert failed.log.count == 2  # the SELECT and the UPDATE; the reload never got out


async def test_expire_on_commit_false_keeps_the_values(engine: AsyncEngine) -> None:
    assert make_session_factory(engine).kw["expire_on_commit"] is False
    with record_statements(engine) as log:
        assert await rename_user(engine) == "Ada Lovelace"
    assert log.count == 2  # SELECT and UPDATE; reading after commit sent nothing
    assert log.statements[1].sql.startswith("UPDATE user_account")


async def test_expire_then_read_fails(engine: AsyncEngine, session: AsyncSession):
    with expect_missing_greenlet(engine) as failed:
        await read_after_expire(session)
    assert failed.log.count == 1


async def test_expire_all_then_read_fails(engine: AsyncEngine, session: AsyncSession):
    everyone = (await session.scalars(select(User))).all()
    with expect_missing_greenlet(engine) as failed:
        await read_after_expire_all(session)
    assert failed.log.count == 1
    # Not only the object the snippet read: every object in the session.
    assert all("name" in inspect(user).expired_attributes for user in everyone)


async def test_rollback_expires_even_without_expire_on_commit(
    engine: AsyncEngine,
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await read_after_rollback(engine)
    assert "FROM user_account" in failed.attempted
    assert failed.log.count == 1  # the SELECT; the reload never got out


@pytest.mark.parametrize(
    "rollback", ["transaction", "savepoint", "none"], ids=lambda r: f"rollback={r}"
)
async def test_what_a_rollback_expires(engine: AsyncEngine, rollback: str) -> None:
    async with make_session_factory(engine)() as session:  # expire_on_commit=False
        query = select(User).where(User.name.in_(["ada", "grace"])).order_by(User.id)
        ada, grace = (await session.scalars(query)).all()
        if rollback == "transaction":
            grace.name = "Grace Hopper"
            await session.rollback()  # the transaction the query began
            expected = {"ada", "grace"}  # changed or not
        elif rollback == "savepoint":
            savepoint = await session.begin_nested()
            grace.name = "Grace Hopper"  # changed inside the savepoint
            await savepoint.rollback()  # ROLLBACK TO SAVEPOINT
            expected = {"grace"}
            assert session.in_transaction()  # the outer transaction goes on
        else:
            await session.commit()
            assert not session.in_transaction()  # none begins before a statement
            await session.rollback()
            expected = set()
        expired = {
            name
            for name, user in (("ada", ada), ("grace", grace))
            if "name" in inspect(user).expired_attributes
        }
        assert expired == expected
        kept = [
            (n, u) for n, u in (("ada", ada), ("grace", grace)) if n not in expected
        ]
        with record_statements(engine) as log:
            names = [user.name for _, user in kept]  # not expired: read from memory
        assert names == [name for name, _ in kept]
        assert log.count == 0


async def test_expire_on_commit_false_keeps_a_row_changed_behind_its_back(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.scalar(select(User).where(User.name == "ada"))
    # An UPDATE the session does not apply to its objects, as from another process.
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(name="changed elsewhere")
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    with record_statements(engine) as log:
        assert user.name == "ada"  # the value in memory, not the row's
    assert log.count == 0


@pytest.mark.seed("deferred_columns:_add_reports")
async def test_refresh_without_names_leaves_deferred_columns_unloaded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with expect_missing_greenlet(engine) as failed:
        await reload_whole_report(session)
    assert "report.body" in failed.attempted
    assert failed.log.count == 2  # the query and the refresh, neither with `body`
    assert all("report.body" not in s.sql for s in failed.log.statements)


async def test_refresh_without_names_reloads_columns_and_eager_loads(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        name, titles = await reload_whole_user(session)
    assert (name, titles) == ("ada", ["Notes on engines", "On sessions"])
    assert log.count == 4  # query + selectinload, then the same two again
    assert "FROM post" in log.statements[3].sql


async def test_refresh_without_names_leaves_lazy_relationships_unloaded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.scalar(select(User).where(User.name == "ada"))
    with record_statements(engine) as log:
        await session.refresh(user)
    assert log.count == 1
    assert "posts" not in user.__dict__
    with expect_missing_greenlet(engine):
        user.posts  # noqa: B018


async def test_refresh_named_column_sends_one_narrow_select(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await refresh_user_name(session) == "Ada Lovelace"
    assert log.count == 3  # SELECT, UPDATE, and the refresh
    assert log.statements[2].sql.startswith("SELECT user_account.name \nFROM")


async def test_refresh_named_lazy_relationship_loads_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await load_posts_by_refresh(session)
    assert titles == ["Notes on engines", "On sessions"]
    # The user query, then refresh's two: the row itself, and the posts.
    assert log.count == 3
    assert "FROM post" in log.statements[2].sql


# --- What expires an attribute ---------------------------------------------------


async def _ada(session: AsyncSession) -> User:
    return await session.scalar(select(User).where(User.name == "ada"))


async def _by_commit(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    await session.commit()  # this session: expire_on_commit=True
    return ada, "name"


async def _by_rollback(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    await session.rollback()
    return ada, "name"


async def _by_expire(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    session.expire(ada)
    return ada, "name"


async def _by_expire_all(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    session.expire_all()
    return ada, "name"


async def _by_flushing_a_sql_expression(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    ada.name = func.upper(User.name)  # the database computes the new value
    await session.flush()
    return ada, "name"


async def _by_orm_update(session: AsyncSession) -> tuple[object, str]:
    ada = await _ada(session)
    # synchronize_session="auto": a value Python cannot evaluate is expired.
    await session.execute(
        update(User).where(User.id == ada.id).values(name=func.upper(User.name))
    )
    return ada, "name"


async def _by_server_onupdate(session: AsyncSession) -> tuple[object, str]:
    ticket = await session.scalar(select(TroubleshootingTicket))
    ticket.title = "Printer fixed"
    await session.flush()  # a trigger sets revision; the UPDATE does not return it
    return ticket, "revision"


async def _by_expiring_the_parent(session: AsyncSession) -> tuple[object, str]:
    stmt = select(CascadeAllInvoice).options(selectinload(CascadeAllInvoice.lines))
    invoice = await session.scalar(stmt)
    line = invoice.lines[0]
    session.expire(invoice)  # cascade="all" includes refresh-expire
    return line, "item"


async def _by_refreshing_the_parent(session: AsyncSession) -> tuple[object, str]:
    invoice = await session.scalar(select(CascadeAllInvoice))
    [line, *_] = await invoice.awaitable_attrs.lines
    await session.refresh(invoice)  # reloads the invoice, expires its lines
    return line, "item"


INVOICES = pytest.mark.seed("new_objects_and_collections:_seed_invoices")
EXPIRED_BY = {
    "commit": (_by_commit, None),
    "rollback": (_by_rollback, None),
    "expire": (_by_expire, None),
    "expire_all": (_by_expire_all, None),
    "flush_sql_expression": (_by_flushing_a_sql_expression, None),
    "orm_update": (_by_orm_update, None),
    "server_onupdate": (
        _by_server_onupdate,
        pytest.mark.seed("troubleshooting:_seed_ticket"),
    ),
    "expire_cascade": (_by_expiring_the_parent, INVOICES),
    "refresh_cascade": (_by_refreshing_the_parent, INVOICES),
}


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(cause, id=f"cause={cause}", marks=[seed] if seed else [])
        for cause, (_, seed) in EXPIRED_BY.items()
    ],
)
async def test_each_of_these_expires_an_attribute(
    engine: AsyncEngine, cause: str
) -> None:
    expire, _ = EXPIRED_BY[cause]
    async with AsyncSession(engine, expire_on_commit=cause == "commit") as session:
        obj, attribute = await expire(session)
        assert attribute in inspect(obj).expired_attributes
        # Its next read is a reload, a hidden query, which asyncio refuses.
        with expect_missing_greenlet(engine) as failed:
            getattr(obj, attribute)
    assert attribute in without_labels(failed.attempted)


# --- A relationship named in refresh(), for each lazy= strategy ---------------------

#: The strategies whose relationship a named refresh loads, and those it does not.
LOADED_BY_REFRESH = (
    "select",
    "selectin",
    "joined",
    "subquery",
    "immediate",
    "raise",
    "raise_on_sql",
)
NOT_LOADED_BY_REFRESH = ("noload", "dynamic", "write_only")


def _parent_with(lazy: str) -> type[DeclarativeBase]:
    """A parent class whose ``children`` is mapped ``lazy=lazy``, in a registry of
    its own (so these tables join no other test's database). A new one per call:
    configuring it is what warns about a deprecated strategy."""

    class Base(DeclarativeBase):
        pass

    class Child(Base):
        __tablename__ = "refresh_child"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int] = mapped_column(ForeignKey("refresh_parent.id"))

    class Parent(Base):
        __tablename__ = "refresh_parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        children = relationship(Child, lazy=lazy, order_by=Child.id)

    return Parent


@dataclass
class Refreshed:
    parent: Any  # as the refresh left it
    statements: int  # what the refresh sent
    deprecations: list[str]  # what SQLAlchemy said of the mapping


async def _refresh_children(engine: AsyncEngine, lazy: str) -> Refreshed:
    """A parent with two children, refreshed with ``["children"]``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SADeprecationWarning)
        parent, count = await _refresh_new_parent(engine, _parent_with(lazy))
    deprecations = []
    for warning in caught:
        if issubclass(warning.category, SADeprecationWarning):
            deprecations.append(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return Refreshed(parent, count, deprecations)


async def _refresh_new_parent(
    engine: AsyncEngine, parent_class: type[DeclarativeBase]
) -> tuple[Any, int]:
    metadata = parent_class.metadata
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(metadata.tables["refresh_parent"].insert(), [{"id": 1}])
        await conn.execute(
            metadata.tables["refresh_child"].insert(),
            [{"id": 1, "parent_id": 1}, {"id": 2, "parent_id": 1}],
        )
    session = AsyncSession(engine, expire_on_commit=False)
    parent = await session.get(parent_class, 1, options=[lazyload("*")])
    assert "children" not in parent.__dict__  # nothing loaded them yet
    with record_statements(engine) as log:
        await session.refresh(parent, ["children"])
    await session.close()
    return parent, log.count


def _lazy_cases() -> list:
    reason = "{}: a named refresh does not load this relationship"
    return [pytest.param(lazy, id=f"lazy={lazy}") for lazy in LOADED_BY_REFRESH] + [
        pytest.param(
            lazy,
            id=f"lazy={lazy}",
            marks=pytest.mark.xfail(
                raises=AssertionError, strict=True, reason=reason.format(lazy)
            ),
        )
        for lazy in NOT_LOADED_BY_REFRESH
    ]


@pytest.mark.parametrize("lazy", _lazy_cases())
async def test_a_relationship_named_in_refresh_is_loaded(
    empty_engine: AsyncEngine, lazy: str
) -> None:
    refreshed = await _refresh_children(empty_engine, lazy)
    parent, count = refreshed.parent, refreshed.statements
    loaded = parent.__dict__.get("children", [])
    assert [child.id for child in loaded] == [1, 2]
    # The row's SELECT and the children's; joined folds them into one.
    assert count == (1 if lazy == "joined" else 2)
    with record_statements(empty_engine) as log:
        assert [child.id for child in parent.children] == [1, 2]
    assert log.count == 0  # in memory: reading sends nothing


@pytest.mark.parametrize(
    "lazy", [pytest.param(lazy, id=f"lazy={lazy}") for lazy in NOT_LOADED_BY_REFRESH]
)
async def test_a_named_refresh_loads_no_noload_dynamic_or_write_only_relationship(
    empty_engine: AsyncEngine, lazy: str
) -> None:
    refreshed = await _refresh_children(empty_engine, lazy)
    parent = refreshed.parent
    assert refreshed.statements == 1  # the row's own SELECT, none for the children
    if lazy == "noload":
        # An empty list stands in for the two children the row has.
        assert parent.__dict__["children"] == []
    else:
        # No loaded state at all: the collection is a query, read explicitly.
        assert "children" not in parent.__dict__
    # 2.1 deprecates noload when the mapping is configured; 2.0 says nothing.
    deprecated = lazy == "noload" and sqlalchemy_line() == "2.1"
    assert [
        "loader strategy is deprecated" in message for message in refreshed.deprecations
    ] == ([True] if deprecated else [])


async def _rename_elsewhere_then_refresh(
    factory: async_sessionmaker[AsyncSession],
) -> tuple[str, str]:
    """Another transaction renames ada; (name in memory, name after a refresh)."""
    async with factory() as reader, factory() as writer:
        ada = await reader.scalar(select(User).where(User.name == "ada"))
        renamed = await writer.get(User, ada.id)
        renamed.name = "Countess"
        await writer.commit()
        in_memory = ada.name
        await reader.refresh(ada, ["name"])
        return in_memory, ada.name


async def test_another_transactions_change_shows_only_after_a_reload(
    engine: AsyncEngine,
) -> None:
    # The reader's transaction is still open when it refreshes.
    factory = make_session_factory(engine)
    assert await _rename_elsewhere_then_refresh(factory) == ("ada", "Countess")


@pytest.mark.only_on(
    engine="postgresql",
    reason="SQLite has no REPEATABLE READ level; PostgreSQL's default is READ "
    "COMMITTED, and REPEATABLE READ keeps the transaction's first snapshot",
)
async def test_under_repeatable_read_the_refresh_sees_the_old_row(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        assert await conn.get_isolation_level() == "READ COMMITTED"
    snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
    factory = make_session_factory(snapshot)
    assert await _rename_elsewhere_then_refresh(factory) == ("ada", "ada")


async def test_populate_existing_reloads_every_object_in_one_select(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        names = await reload_users_in_one_query(session)
    assert names and all(name.endswith(" (renamed)") for name in names)
    assert log.count == 3  # SELECT, UPDATE, and the one reloading SELECT


async def test_the_same_query_again_keeps_the_objects_it_holds(
    session: AsyncSession,
) -> None:
    names = await _query_again_without_populate_existing(session)
    assert names and not any(name.endswith(" (renamed)") for name in names)
