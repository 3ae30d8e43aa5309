"""Count and capture the SQL statements a block of code sends.

The policy's testing checks ask tests to prove that a route sends the statements
it should and no hidden extra ones. The recorder (product code, in
:mod:`implicit_io.statement_budgets`) is how the guide proves it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from implicit_io.statement_budgets import record_statements
from snippets.models import User


# region usage
async def user_names_and_statement_count(
    engine: AsyncEngine, session: AsyncSession
) -> tuple[list[str], int]:
    with record_statements(engine) as log:
        users = (await session.scalars(select(User).order_by(User.name))).all()
        # Reading columns the query loaded sends nothing more.
        names = [user.name for user in users]
    return names, log.count


# endregion usage
