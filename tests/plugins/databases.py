"""Fixtures for a fresh database per test: ``engine``, ``session_factory``, ``session``.

The database is the one ``GUIDE_DATABASE_URL`` names (guide_runtime/database.py),
checked once before any test runs: a URL the suite cannot or must not use stops the
run with one error naming the variable and the fix, not a traceback per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from guide_runtime import configurations
from guide_runtime.capture import load_callable
from guide_runtime.database import (
    DatabaseURLError,
    Seed,
    add_nothing,
    add_sample_data,
    check_database_url,
    database_url,
    drop_leftover_schemas,
    fresh_database,
    session_factory_for,
)


def pytest_configure(config: pytest.Config) -> None:
    try:
        check_database_url()
    except DatabaseURLError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if configurations.current().engine == "postgresql":
        # Every fresh database drops its schema; this catches an interrupted one.
        asyncio.run(drop_leftover_schemas(database_url()))


def _seed_of(request: pytest.FixtureRequest) -> Seed:
    """The seed the closest ``seed`` marker names, else the sample data."""
    marker = request.node.get_closest_marker("seed")
    if marker is None:
        return add_sample_data
    if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str):
        pytest.fail(
            f"{request.node.nodeid}: write @pytest.mark.seed('module:_seed'), naming "
            "an async function(session) in snippets/ that adds the starting rows",
            pytrace=False,
        )
    return load_callable(marker.args[0])


@pytest.fixture
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """A new database for this test alone, with the sample data loaded.

    ``@pytest.mark.seed("deferred_columns:_add_reports")`` on a test (or as the
    module's ``pytestmark``) seeds it with that snippet function instead, as
    ``:seed:`` does on a page; ``session_factory`` and ``session`` follow. (By
    name, because ``pytest.mark.seed(function)`` would decorate the function.)
    """
    async with fresh_database(_seed_of(request)) as engine:
        yield engine


@pytest.fixture
async def empty_engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_database(add_nothing) as engine:
        yield engine


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory_for(engine)


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session
