from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from executed_store import STORE_VARIABLE
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.harness import (
    Seed,
    add_nothing,
    add_sample_data,
    fresh_database,
    load_callable,
    session_factory_for,
)

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
    "-j",
    "auto",
]
# Every build the suite starts, of the checkout or of a copy, reuses the results
# `make html` and `make serve` stored: a key names content, never a path.
os.environ.setdefault(STORE_VARIABLE, str(ROOT / "_build" / ".executed"))


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
