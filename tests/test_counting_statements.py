from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from snippets.counting_statements import user_names_and_statement_count


async def test_usage_counts_one_statement(engine: AsyncEngine, session: AsyncSession):
    names, count = await user_names_and_statement_count(engine, session)
    assert names == ["ada", "grace", "linus"]
    assert count == 1
