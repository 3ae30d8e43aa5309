"""The policy's patterns A, B and C: the right data, and exactly the statements."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from snippets.counting_statements import record_statements
from snippets.models import User
from snippets.policy import (
    _first_user_roles_awaited,
    _first_user_roles_by_refresh,
    role_names_after_refresh,
    role_names_awaited,
    role_names_by_user,
)

ADA = 1  # the first sample user, inserted first


async def test_pattern_a_loads_every_users_roles_in_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        roles = await role_names_by_user(session)
    assert roles == {"ada": ["admin", "editor"], "grace": ["editor"], "linus": []}
    assert log.count == 2
    assert " IN (" in log.statements[1].sql


async def test_pattern_b_refresh_with_a_relationship_name_loads_it(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        roles = await role_names_after_refresh(session, ADA)
    assert roles == ["admin", "editor"]
    # get() loads the user; refresh() re-selects its row (primary key only, as no
    # column was named) and then loads the roles it was asked for.
    assert log.count == 3
    assert log.statements[1].sql.startswith("SELECT user_account.id \nFROM")
    assert "FROM role, user_role" in log.statements[2].sql


async def test_pattern_b_refreshes_only_the_named_attribute(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.get(User, ADA)
    assert user is not None
    state = inspect(user)
    assert "roles" in state.unloaded and "posts" in state.unloaded
    with record_statements(engine) as log:
        await session.refresh(user, ["roles"])
    assert log.count == 2  # the row, then the named relationship
    assert "roles" not in state.unloaded
    assert "posts" in state.unloaded  # not named, so not loaded
    with record_statements(engine) as log:
        assert sorted(role.name for role in user.roles) == ["admin", "editor"]
    assert log.count == 0  # the read is free: the refresh already loaded it


async def test_pattern_c_awaits_the_relationship_in_two_statements(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    with record_statements(engine) as log:
        roles = await role_names_awaited(session, ADA)
    assert roles == ["admin", "editor"]
    assert log.count == 2


async def test_pattern_c_costs_nothing_once_loaded(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    user = await session.get(User, ADA)
    assert user is not None
    await user.awaitable_attrs.roles
    with record_statements(engine) as log:
        await user.awaitable_attrs.roles
    assert log.count == 0


async def test_patterns_b_and_c_return_nothing_for_an_unknown_user(
    session: AsyncSession,
) -> None:
    assert await role_names_after_refresh(session, 999) == []
    assert await role_names_awaited(session, 999) == []


async def test_the_captured_runs_show_the_first_user(session: AsyncSession) -> None:
    assert await _first_user_roles_by_refresh(session) == ["admin", "editor"]
    assert await _first_user_roles_awaited(session) == ["admin", "editor"]
