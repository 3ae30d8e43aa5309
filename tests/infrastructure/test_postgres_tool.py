"""tools/postgres.py: the throwaway server goes away however the run ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from guide_runtime.database import DATABASE_URL_VARIABLE
from tests.support import needs_postgres_binaries
from tools import postgres
from tools.postgres import binaries, stored_cluster, throwaway_server

pytestmark = needs_postgres_binaries()

ROOT = Path(__file__).resolve().parents[2]
# The command run against the server: says it is up, then waits to be stopped.
WAIT = (
    f"import os, time; print(os.environ[{DATABASE_URL_VARIABLE!r}], flush=True); "
    "time.sleep(120)"
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "tools/postgres.py", "--", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _server_of(run: subprocess.Popen[str]) -> tuple[Path, int]:
    """The data directory and postmaster pid of a running script's server."""
    announced = run.stderr.readline()
    directory = Path(announced.rsplit("data in ", 1)[1].strip())
    assert run.stdout.readline().startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    return directory, pid


@pytest.mark.parametrize(
    ("stop", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_an_interrupted_run_leaves_no_server(stop: signal.Signals, status: int):
    run = _start([sys.executable, "-c", WAIT])
    directory, pid = _server_of(run)
    assert not _gone(pid)

    run.send_signal(stop)
    run.communicate(timeout=60)  # waits, and closes its pipes

    assert run.returncode == status
    assert _gone(pid)
    assert not directory.exists()


def test_a_failing_command_fails_the_run_and_leaves_no_server() -> None:
    run = subprocess.run(
        [sys.executable, "tools/postgres.py", "--", sys.executable, "-c", "exit(3)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 3
    directory = Path(run.stderr.rsplit("data in ", 1)[1].split()[0])
    assert not directory.exists()


def test_an_error_inside_the_block_stops_and_removes_the_server() -> None:
    with pytest.raises(RuntimeError, match="boom"), throwaway_server() as server:
        pid = server.process.pid
        directory = server.directory
        raise RuntimeError("boom")
    assert _gone(pid)
    assert not directory.exists()


def _system_identifier(data: Path) -> str:
    """What initdb drew at random for this cluster, as pg_controldata prints it."""
    printed = subprocess.run(
        [str(binaries() / "pg_controldata"), "-D", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    [line] = [x for x in printed.splitlines() if x.startswith("Database system id")]
    return line.split(":", 1)[1].strip()


def test_two_servers_share_one_initdb_and_nothing_else() -> None:
    with throwaway_server() as first:
        cluster = stored_cluster(binaries())
        stored = {p: p.stat().st_mtime_ns for p in cluster.rglob("*")}
        with throwaway_server() as second:
            assert first.port != second.port
            assert first.directory != second.directory
            # One initdb's cluster, copied: each server runs on its own copy.
            assert _system_identifier(first.directory / "data") == (
                _system_identifier(second.directory / "data")
            )
            assert _system_identifier(cluster) == _system_identifier(
                first.directory / "data"
            )
            assert (second.directory / "data" / "postmaster.pid").is_file()
    # The servers wrote to their copies only.
    assert not (cluster / "postmaster.pid").exists()
    assert {p: p.stat().st_mtime_ns for p in cluster.rglob("*")} == stored


def test_a_servers_data_is_in_memory_only_with_room_to_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "MEMORY", tmp_path)
    kept = postgres._scratch("guide-postgres-")
    assert kept.parent == tmp_path
    # Too little room left (a container's 64 MB /dev/shm), or none at all: the
    # temporary directory, as any other scratch space.
    room = shutil.disk_usage(tmp_path).free
    monkeypatch.setattr(postgres, "MEMORY_TO_SPARE", room * 2)
    for memory in (tmp_path, tmp_path / "absent"):
        monkeypatch.setattr(postgres, "MEMORY", memory)
        elsewhere = postgres._scratch("guide-postgres-")
        elsewhere.rmdir()
        assert elsewhere.parent == Path(tempfile.gettempdir())
