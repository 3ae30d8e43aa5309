import gc

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import lazyload, raiseload, selectinload

from snippets.counting_statements import record_statements
from snippets.deferred_columns import Report
from snippets.detecting_implicit_io import (
    RaiseOnSqlTicket,
    RaiseTicket,
    expired_column_under_raiseload,
    raise_on_lazy_loads,
    raise_on_sql_ticket_assignee,
    raise_on_sql_ticket_assignee_already_in_session,
    raise_ticket_assignee,
    raise_ticket_assignee_already_in_session,
    ticket_with_assignee,
    user_posts_and_nothing_else,
    user_posts_under_raiseload,
    user_roles_in_strict_session,
)
from snippets.models import User
from tests.support import expect_missing_greenlet


async def _raises(engine, call, message: str) -> int:
    with record_statements(engine) as log, pytest.raises(InvalidRequestError) as raised:
        await call()
    assert str(raised.value) == message
    return log.count


RAISE = "'RaiseTicket.assignee' is not available due to lazy='raise'"
RAISE_ON_SQL = "'RaiseOnSqlTicket.assignee' is not available due to lazy='raise_on_sql'"


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
@pytest.mark.parametrize(
    ("load", "message", "sent"),
    [
        pytest.param(raise_ticket_assignee, RAISE, 1, id="raise-needs-sql"),
        # lazy="raise" refuses even what the identity map could answer.
        pytest.param(
            raise_ticket_assignee_already_in_session, RAISE, 2, id="raise-identity-hit"
        ),
        pytest.param(
            raise_on_sql_ticket_assignee, RAISE_ON_SQL, 1, id="raise_on_sql-needs-sql"
        ),
    ],
)
async def test_raise_strategies_refuse_the_load(
    engine: AsyncEngine, session: AsyncSession, load, message: str, sent: int
) -> None:
    assert await _raises(engine, lambda: load(session), message) == sent


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
@pytest.mark.parametrize(
    "load", ["awaitable_attrs", "run_sync"], ids=lambda load: f"load={load}"
)
@pytest.mark.parametrize(
    "strategy", ["select", "raise_on_sql"], ids=lambda strategy: f"strategy={strategy}"
)
async def test_raise_on_sql_refuses_explicit_loads_that_need_sql(
    engine: AsyncEngine, session: AsyncSession, strategy: str, load: str
) -> None:
    # lazyload() gives this query's ticket the lazy="select" strategy instead.
    options = [lazyload(RaiseOnSqlTicket.assignee)] if strategy == "select" else []
    ticket = await session.get_one(RaiseOnSqlTicket, 1, options=options)

    async def read() -> User:
        if load == "awaitable_attrs":
            return await ticket.awaitable_attrs.assignee
        return await session.run_sync(lambda _: ticket.assignee)

    if strategy == "select":  # both are loads asyncio can run
        with record_statements(engine) as log:
            assert (await read()).name == "ada"
        assert log.count == 1
    else:  # refused as any other load that needs SQL, before any is sent
        assert await _raises(engine, read, RAISE_ON_SQL) == 0


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
async def test_raise_on_sql_lets_an_identity_map_hit_through(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        found = await raise_on_sql_ticket_assignee_already_in_session(session)
    assert found == ("ada", True)
    assert log.count == 2  # the two get() calls; the assignee cost nothing


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
async def test_raise_on_sql_depends_on_a_live_reference(session: AsyncSession) -> None:
    # The identity map is weak: a discarded object is gone, and SQL is needed.
    await session.get(User, 1)
    gc.collect()
    ticket = await session.get(RaiseOnSqlTicket, 1)
    assert ticket is not None
    with pytest.raises(InvalidRequestError, match="raise_on_sql"):
        ticket.assignee  # noqa: B018


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
async def test_loader_option_overrides_lazy_raise(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        assert await ticket_with_assignee(session) == ("Disk full", "ada")
    assert log.count == 1


@pytest.mark.seed("detecting_implicit_io:_seed_tickets")
async def test_named_refresh_loads_a_raise_relationship(session: AsyncSession) -> None:
    ticket = await session.get(RaiseTicket, 1)
    assert ticket is not None
    await session.refresh(ticket, ["assignee"])
    assert ticket.assignee.name == "ada"


async def test_raiseload_star_raises_on_relationships(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    sent = await _raises(
        engine,
        lambda: user_posts_under_raiseload(session),
        "'User.posts' is not available due to lazy='raise'",
    )
    assert sent == 1


async def test_raiseload_star_after_explicit_loads(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        titles = await user_posts_and_nothing_else(session)
    assert titles == ["Notes on engines", "On sessions"]
    assert log.count == 2
    # The same options: the wildcard does not override the explicit selectinload.
    stmt = (
        select(User)
        .where(User.id == 1)
        .options(selectinload(User.posts), raiseload("*"))
    )
    user = (await session.scalars(stmt)).one()
    assert len(user.posts) == 2
    with pytest.raises(InvalidRequestError, match=r"'User\.roles' is not available"):
        user.roles  # noqa: B018


async def _deferred_column_under_raiseload(session: AsyncSession) -> str:
    report = await session.scalar(select(Report).options(raiseload("*")))
    return report.body  # deferred in the mapping: raiseload("*") does not cover it


@pytest.mark.parametrize(
    "column",
    [
        pytest.param("expired", id="column=expired"),
        pytest.param(
            "deferred",
            id="column=deferred",
            marks=pytest.mark.seed("deferred_columns:_add_reports"),
        ),
    ],
)
async def test_raiseload_star_misses_expired_columns(
    engine: AsyncEngine, session: AsyncSession, column: str
) -> None:
    read = {
        "expired": expired_column_under_raiseload,
        "deferred": _deferred_column_under_raiseload,
    }[column]
    with expect_missing_greenlet(engine) as failed:
        await read(session)
    # Not the clear raiseload error (a bare MissingGreenlet is itself an
    # InvalidRequestError, so the type alone does not tell them apart).
    assert "lazy='raise'" not in str(failed.error)
    assert failed.log.count == 1


async def test_strict_session_turns_lazy_loads_into_errors(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    sent = await _raises(
        engine,
        lambda: user_roles_in_strict_session(session),
        "'User.roles' is not available due to lazy='raise'",
    )
    assert sent == 1


async def test_strict_session_keeps_explicit_loads_working(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    raise_on_lazy_loads(session)
    with record_statements(engine) as log:
        stmt = select(User).order_by(User.id).options(selectinload(User.posts))
        users = (await session.scalars(stmt)).all()
        titles = [post.title for user in users for post in user.posts]
        user = users[0]
        await session.refresh(user, ["roles"])
    assert titles == ["Notes on engines", "On sessions", "Compilers"]
    assert [role.name for role in user.roles] == ["admin", "editor"]
    # The query, its selectinload, and the named refresh's two statements.
    assert log.count == 4
    assert RaiseTicket.__tablename__ == "raise_ticket"


@pytest.mark.parametrize(("sql_only", "raises"), [(False, True), (True, False)])
async def test_raiseload_star_and_identity_map_hits(
    session: AsyncSession, sql_only: bool, raises: bool
) -> None:
    from snippets.models import Post

    author = await session.get(User, 1)  # keep the author in the identity map
    stmt = select(Post).where(Post.id == 1).options(raiseload("*", sql_only=sql_only))
    post = (await session.scalars(stmt)).one()
    if raises:
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            post.author  # noqa: B018
    else:
        assert post.author is author
