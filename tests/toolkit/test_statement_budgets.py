import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from guide_runtime.capture import capture
from guide_runtime.database import fresh_database
from implicit_io.rule_links import rule_url
from implicit_io.statement_budgets import (
    Statement,
    StatementBudget,
    StatementBudgetExceeded,
    StatementLog,
    assert_statements,
    max_statements,
    record_statements,
)
from snippets.models import User
from snippets.statement_budgets import (
    budget_failure_message,
    statement_budget_fixture,
    test_users_with_posts_sends_two_statements,  # collected: the page's example test
    users_with_posts,
)

assert statement_budget_fixture  # registers the fixture in this module


async def test_exact_budget_passes_and_yields_the_log(session: AsyncSession) -> None:
    with assert_statements(session, 2) as log:
        assert await users_with_posts(session) == {"ada": 2, "grace": 1, "linus": 0}
    assert log.count == 2


async def test_exact_budget_fails_on_fewer_statements_too(engine: AsyncEngine) -> None:
    with (
        pytest.raises(StatementBudgetExceeded, match="exactly 2 statement"),
        assert_statements(engine, 2),
    ):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


async def test_failure_lists_the_sql_and_links_the_rule(session: AsyncSession):
    with pytest.raises(StatementBudgetExceeded) as raised:
        await budget_failure_message(session)
    message = str(raised.value)
    assert message.startswith("IO402 expected exactly 1 statement(s), 2 sent:")
    assert "[1] SELECT user_account.id" in message
    assert "[2] SELECT post." in message and "IN (" in message
    assert message.endswith(rule_url("IO402"))


async def test_max_budget_allows_fewer_and_refuses_more(engine: AsyncEngine):
    async with engine.connect() as conn:
        with max_statements(conn, 2) as log:
            await conn.execute(text("SELECT 1"))
        assert log.count == 1
        with (
            pytest.raises(StatementBudgetExceeded, match="at most 1 statement"),
            max_statements(conn, 1),
        ):
            await conn.execute(text("SELECT 1"))
            await conn.execute(text("SELECT 2"))


async def test_sync_session_and_engine(engine: AsyncEngine) -> None:
    def work(sync_session: Session) -> list[str]:
        with assert_statements(sync_session, 1):
            names = sync_session.scalars(select(User.name).order_by(User.name)).all()
        with (
            pytest.raises(StatementBudgetExceeded, match="at most 0"),
            max_statements(sync_session.get_bind(), 0),
        ):
            sync_session.execute(text("SELECT 1"))
        return list(names)

    async with AsyncSession(engine) as session:
        assert await session.run_sync(work) == ["ada", "grace", "linus"]


def _budgets_hold(bind: object, run: Callable[[], object]) -> None:
    """One statement through ``bind``: exactly one passes, at most zero fails."""
    with assert_statements(bind, 1) as log:
        run()
    assert [statement.sql for statement in log.statements] == ["SELECT 1"]
    with (
        pytest.raises(
            StatementBudgetExceeded, match=r"at most 0 statement\(s\), 1 sent"
        ),
        max_statements(bind, 0),
    ):
        run()


BINDS = ["AsyncSession", "AsyncEngine", "AsyncConnection", "Session", "Engine"]
BINDS += ["Connection"]


@pytest.mark.parametrize("kind", BINDS, ids=lambda kind: f"bind={kind}")
async def test_a_budget_takes_whatever_bind_the_test_has(
    engine: AsyncEngine, kind: str
) -> None:
    one = text("SELECT 1")
    if kind == "AsyncEngine":
        async with engine.connect() as conn:
            with assert_statements(engine, 1):
                await conn.execute(one)
        return
    async with AsyncSession(engine) as session:
        if kind == "AsyncSession":
            with assert_statements(session, 1):
                await session.execute(one)
            with (
                pytest.raises(
                    StatementBudgetExceeded, match=r"at most 0 statement\(s\), 1 sent"
                ),
                max_statements(session, 0),
            ):
                await session.execute(one)
            return
        conn = await session.connection()
        if kind == "AsyncConnection":
            with assert_statements(conn, 1):
                await conn.execute(one)
            return

        def sync_side(sync_session: Session) -> None:
            sync_conn = sync_session.connection()
            bind = {
                "Session": sync_session,
                "Engine": sync_conn.engine,
                "Connection": sync_conn,
            }[kind]
            _budgets_hold(bind, lambda: sync_conn.execute(one))

        await session.run_sync(sync_side)


async def test_a_budget_counts_every_session_and_task_on_its_engine(
    engine: AsyncEngine,
) -> None:
    async def other_task() -> None:
        async with AsyncSession(engine) as other:
            await other.execute(text("SELECT 2"))

    async with fresh_database() as elsewhere, AsyncSession(engine) as session:
        with assert_statements(session, 3) as log:
            await session.execute(text("SELECT 1"))
            await asyncio.gather(other_task())  # another session, in its own task
            async with elsewhere.connect() as conn:  # another engine: not counted
                await conn.execute(text("SELECT 4"))
            async with engine.connect() as conn:  # this engine, not the session
                await conn.execute(text("SELECT 3"))
    assert [statement.sql for statement in log.statements] == [
        "SELECT 1",
        "SELECT 2",
        "SELECT 3",
    ]


async def test_fixture_gives_budgets_on_the_test_engine(
    statement_budget: StatementBudget, session: AsyncSession
) -> None:
    assert isinstance(statement_budget, StatementBudget)
    with statement_budget.at_most(5) as log:
        await users_with_posts(session)
    assert log.count == 2
    with pytest.raises(StatementBudgetExceeded), statement_budget.exactly(0):
        await users_with_posts(session)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_budget_must_be_a_count(engine: AsyncEngine, bad) -> None:
    with (
        pytest.raises(ValueError, match="a statement budget is a count"),
        max_statements(engine, bad),
    ):
        pass


def test_captured_failure_shows_both_statements() -> None:
    captured = capture("statement_budgets:budget_failure_message")
    assert isinstance(captured.error, StatementBudgetExceeded)
    assert captured.statements.count == 2


def test_the_example_test_is_collected() -> None:
    assert test_users_with_posts_sends_two_statements.__name__.startswith("test_")


# The recorder the budgets are built on (shown on the counting-statements page).
async def test_records_sql_and_parameters_in_order(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with record_statements(engine) as log:
            await conn.execute(select(User.id).where(User.name == "ada"))
            await conn.execute(text("SELECT 1"))
    assert isinstance(log, StatementLog)
    assert log.count == 2
    first = log.statements[0]
    assert isinstance(first, Statement)
    assert "FROM user_account" in first.sql
    assert first.parameters == ("ada",)
    assert log.statements[1].sql == "SELECT 1"
    assert str(log).startswith("[1] SELECT user_account.id")


async def test_stops_recording_when_the_block_ends(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with record_statements(engine) as log:
            await conn.execute(text("SELECT 1"))
        await conn.execute(text("SELECT 2"))
    assert [s.sql for s in log.statements] == ["SELECT 1"]


async def test_works_on_a_sync_engine_too(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with record_statements(engine.sync_engine) as log:
            await conn.execute(text("SELECT 1"))
    assert log.count == 1


async def test_without_an_engine_it_records_every_engine(engine: AsyncEngine):
    async with fresh_database() as other:
        with record_statements() as log:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            async with other.connect() as conn:
                await conn.execute(text("SELECT 2"))
    assert [s.sql for s in log.statements] == ["SELECT 1", "SELECT 2"]
