"""GUIDE_DATABASE_URL: what the suite refuses, and what it never touches.

Each bad URL gives one error naming the variable and the fix, before any test runs.
The suite works only in spaces of its own: a user's SQLite file is refused
untouched; on PostgreSQL it creates a schema per fresh database and drops it,
leaving every other schema as it found it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from guide_runtime.database import (
    DATABASE_URL_VARIABLE,
    DatabaseURLError,
    check_database_url,
    fresh_database,
)
from tests.support import needs_postgres_binaries
from tools.postgres import Server, free_port, throwaway_server

ROOT = Path(__file__).resolve().parents[2]
# One worker runs this module, so one throwaway server (``server``) serves it.
pytestmark = pytest.mark.xdist_group("database-safety")


def _suite_on(url: str, module: str) -> subprocess.CompletedProcess[str]:
    """Run a test module as a user would, against ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", module, "-p", "no:randomly", "-n", "0"],
        cwd=ROOT,
        env={**os.environ, DATABASE_URL_VARIABLE: url},
        capture_output=True,
        text=True,
    )


def _refusal(url: str) -> str:
    with pytest.raises(DatabaseURLError) as refused:
        check_database_url(url)
    message = str(refused.value)
    assert message.startswith(f"{DATABASE_URL_VARIABLE}=")
    return message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("this is not a url", "is not a database URL"),
        ("mysql+aiomysql://app@db/app", "runs on SQLite and PostgreSQL, not 'mysql'"),
        ("postgresql://app@db/app", "the driver is 'psycopg"),
        ("sqlite:///:memory:", "the driver is 'pysqlite'"),
    ],
)
def test_an_unusable_url_is_refused_with_the_fix(url: str, problem: str) -> None:
    message = _refusal(url)
    assert problem in message
    assert f"Unset {DATABASE_URL_VARIABLE}" in message


def test_a_missing_driver_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in an environment without asyncpg: importing it fails.
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    message = _refusal("postgresql+asyncpg://app@localhost/app")
    assert "the driver asyncpg is not installed" in message
    assert "pip install -r requirements.txt" in message


def test_an_unreachable_server_is_refused() -> None:
    message = _refusal(f"postgresql+asyncpg://app@127.0.0.1:{free_port()}/app")
    assert "cannot connect" in message
    assert "Check the host and port, and that the server is running" in message


def test_a_users_sqlite_file_is_refused_and_left_intact(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as users_db:
        users_db.execute("CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT)")
        users_db.execute("INSERT INTO post (title) VALUES ('mine')")
    users_db.close()
    before = path.read_bytes()

    # The module the defect report ran: it loads the sample data, drops nothing.
    run = _suite_on(
        f"sqlite+aiosqlite:///{path}", "tests/examples/test_eager_loading.py"
    )

    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    output = run.stdout + run.stderr
    assert "holds the tables ['post']" in output
    assert "never writes to a database file it is given" in output
    assert "Traceback" not in output and output.count(DATABASE_URL_VARIABLE) >= 1
    assert path.read_bytes() == before
    with sqlite3.connect(path) as users_db:
        tables = users_db.execute("SELECT name FROM sqlite_master").fetchall()
        rows = users_db.execute("SELECT id, title FROM post").fetchall()
    users_db.close()
    assert (tables, rows) == ([("post",)], [(1, "mine")])


def test_an_empty_or_absent_sqlite_file_is_refused_and_not_created(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    message = _refusal(f"sqlite+aiosqlite:///{path}")
    assert "which does not exist" in message
    assert not path.exists()


# --- Against a PostgreSQL server of this module's own ---------------------------


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """A throwaway server this module may reconfigure (never the suite's). Only
    this module uses it; session-scoped, so a worker starts it once, not again
    each time pytest-xdist hands it this module's tests between other modules'."""
    if needs_postgres_binaries().args[0]:
        pytest.skip(needs_postgres_binaries().kwargs["reason"])
    with throwaway_server() as started:
        yield started


def _sql(server: Server, *statements: str) -> list[tuple]:
    async def run() -> list[tuple]:
        engine = create_async_engine(server.url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.begin() as conn:
                rows: list[tuple] = []
                for statement in statements:
                    result = await conn.execute(text(statement))
                    if result.returns_rows:
                        rows.extend(tuple(row) for row in result)
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_wrong_password_is_refused(server: Server) -> None:
    _sql(server, "CREATE ROLE guide_secret LOGIN PASSWORD 'right'")
    hba = server.directory / "data" / "pg_hba.conf"
    hba.write_text(
        "host all guide_secret 127.0.0.1/32 scram-sha-256\n" + hba.read_text()
    )
    _sql(server, "SELECT pg_reload_conf()")
    url = f"postgresql+asyncpg://guide_secret:wrong@127.0.0.1:{server.port}/postgres"
    message = _refusal(url)
    assert "InvalidPasswordError" in message
    assert "Check the user name and password" in message
    assert "wrong" not in message  # the URL is shown with its password hidden


def test_a_missing_database_is_refused(server: Server) -> None:
    message = _refusal(server.url.rsplit("/", 1)[0] + "/no_such_db")
    assert "InvalidCatalogNameError" in message
    assert "Create that database first" in message


def test_a_role_that_may_not_create_schemas_is_refused(server: Server) -> None:
    _sql(
        server,
        "CREATE ROLE guide_reader LOGIN",
        "CREATE DATABASE guide_locked",
        "REVOKE CREATE ON DATABASE guide_locked FROM PUBLIC",
    )
    url = f"postgresql+asyncpg://guide_reader@127.0.0.1:{server.port}/guide_locked"
    message = _refusal(url)
    assert "may not create schemas in the database 'guide_locked'" in message
    assert "GRANT CREATE ON DATABASE guide_locked TO guide_reader" in message


def _user_state(server: Server) -> list[tuple]:
    return _sql(
        server,
        "SELECT nspname, '' FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
        "AND nspname <> 'information_schema' "
        "UNION ALL SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "UNION ALL SELECT 'row', title FROM public.post ORDER BY 1, 2",
    )


def test_on_postgresql_a_users_tables_are_untouched(server: Server) -> None:
    _sql(
        server,
        "CREATE TABLE IF NOT EXISTS public.post (id serial PRIMARY KEY, title text)",
        "INSERT INTO public.post (title) VALUES ('mine')",
    )
    before = _user_state(server)

    # A module that loads the sample data (and builds no site).
    run = _suite_on(server.url, "tests/examples/test_models.py")

    assert run.returncode == 0, run.stdout + run.stderr
    # The same schemas, tables and rows: the guide's schemas came and went.
    assert _user_state(server) == before
    assert ("row", "mine") in before and ("public", "post") in before


def test_each_fresh_database_is_a_schema_of_its_own(server: Server) -> None:
    async def two_at_once() -> tuple[set[str], int]:
        async with (
            fresh_database(url=server.url) as first,
            fresh_database(url=server.url) as second,
            first.connect() as a,
            second.connect() as b,
        ):
            schemas = {await a.scalar(text("SELECT current_schema()"))}
            schemas.add(await b.scalar(text("SELECT current_schema()")))
            # Unqualified names resolve in the test's schema alone.
            return schemas, await a.scalar(text("SELECT count(*) FROM user_account"))

    schemas, users = asyncio.run(two_at_once())
    assert len(schemas) == 2 and all(s.startswith("guide_") for s in schemas)
    assert users == 3
    left = _sql(
        server,
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'guide\\_%'",
    )
    assert left == []
