"""The policy's three recommended patterns, each loading related rows at an await."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from snippets.models import User


async def role_names_by_user(session: AsyncSession) -> dict[str, list[str]]:
    """Pattern A: the query that fetches the users also fetches their roles."""
    stmt = select(User).options(selectinload(User.roles)).order_by(User.id)
    users = (await session.scalars(stmt)).all()
    return {user.name: sorted(role.name for role in user.roles) for user in users}


async def role_names_after_refresh(session: AsyncSession, user_id: int) -> list[str]:
    """Pattern B: load one object, then refresh only the attribute you will read."""
    user = await session.get(User, user_id)
    if user is None:
        return []
    # Naming the relationship loads it now; other attributes are left alone.
    await session.refresh(user, ["roles"])
    return sorted(role.name for role in user.roles)


async def role_names_awaited(session: AsyncSession, user_id: int) -> list[str]:
    """Pattern C: await the attribute itself (needs AsyncAttrs on the model)."""
    user = await session.get(User, user_id)
    if user is None:
        return []
    roles = await user.awaitable_attrs.roles
    return sorted(role.name for role in roles)


# The captured runs on the policy page need functions that take only a session.
async def _first_user_roles_by_refresh(session: AsyncSession) -> list[str]:
    return await role_names_after_refresh(session, 1)


async def _first_user_roles_awaited(session: AsyncSession) -> list[str]:
    return await role_names_awaited(session, 1)
