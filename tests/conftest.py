from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.harness import add_nothing, fresh_database, session_factory_for

ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = ROOT / "_build" / "html"
STRICT_BUILD = [
    sys.executable,
    "-m",
    "sphinx",
    "-b",
    "html",
    "-n",
    "-W",
    "--keep-going",
]


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    """A new database for this test alone, with the sample data loaded."""
    async with fresh_database() as engine:
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


# The strict site build runs in a second process while the other tests run, so
# `make test` costs about max(build, tests) rather than their sum on two cores.
_site_build: subprocess.Popen[str] | None = None


def _start_site_build() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STRICT_BUILD, str(ROOT), str(SITE_DIR)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    global _site_build
    wants_site = any(
        "built_site" in getattr(item, "fixturenames", ()) for item in session.items
    )
    if wants_site and _site_build is None:
        _site_build = _start_site_build()


@pytest.fixture(scope="session")
def built_site() -> Path:
    """The site, built strictly (-n -W): a warning anywhere fails every site test."""
    process = _site_build or _start_site_build()
    output, _ = process.communicate()
    if process.returncode != 0:
        pytest.fail(f"strict Sphinx build failed:\n{output}", pytrace=False)
    return SITE_DIR
