"""A throwaway PostgreSQL server for one command: ``make test-postgres``.

    python tools/postgres.py -- python -m pytest --record-proofs

starts a private PostgreSQL server from the machine's binaries (``initdb``,
``postgres``; Debian's ``postgresql`` package), on a free loopback port, with its
data directory and socket in a new private directory (in ``/dev/shm`` when that
has room, see ``MEMORY``); runs the command with
``GUIDE_DATABASE_URL`` pointing at it (asyncpg); then stops the server and removes
the directory, however the command ends (failure, Ctrl-C, SIGTERM). The command's
exit status is the script's. As root, the server runs as the ``postgres`` user,
because PostgreSQL refuses to run as root.

``initdb`` takes about 0.8 s here, and its result is the same every time for the
same binaries and options. It therefore runs once: its data directory is kept in
``_build/postgres-clusters/`` (``make clean`` removes it), under a key naming the
binaries, their version and the options, and each server starts on a copy of it:
up in about 0.15 s here, most of it the copy (hence the 1 MB WAL files, and
``MEMORY``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The variable is the runtime's (it reads it; this only sets it for the command).
from guide_runtime import DATABASE_URL_VARIABLE

#: The server account when this runs as root (PostgreSQL will not run as root).
SERVER_USER = "postgres"
#: Durability is worth nothing on a server that is deleted after the run.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
#: How initdb makes a cluster: one superuser, no passwords (loopback only).
INITDB_OPTIONS = (
    "-U",
    "postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    # 1 MB write-ahead log files, not 16 MB: each server starts from a copy.
    "--wal-segsize=1",
)
#: Clusters made by initdb, kept to be copied (see the module's docstring).
CLUSTERS = Path(__file__).resolve().parent.parent / "_build" / "postgres-clusters"
#: A server's data is deleted when it stops, so it is kept in memory when there is
#: room to spare (a disk's thousand small file writes per server cost up to a
#: second on a busy virtual machine), else in the temporary directory.
MEMORY = Path("/dev/shm")
MEMORY_TO_SPARE = 1 << 30  # a container's default 64 MB /dev/shm is left alone
START_ATTEMPTS = 5
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class ServerError(RuntimeError):
    """The server could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]


def binaries() -> Path:
    """The folder holding initdb and postgres, or a ServerError saying how to get it."""
    found = shutil.which("initdb")
    if found is None:
        raise ServerError(
            "PostgreSQL's initdb is not on PATH. Install Debian's server package "
            "(apt-get install -y postgresql) or put its bin folder on PATH "
            "(for example /usr/lib/postgresql/15/bin)."
        )
    return Path(found).resolve().parent


def free_port() -> int:
    """A port nothing listens on now (the server may still lose a race for it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user() -> dict[str, str]:
    return {"user": SERVER_USER, "group": SERVER_USER} if os.geteuid() == 0 else {}


def _run(command: Sequence[str], log: Path) -> None:
    with log.open("ab") as output:
        done = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, **_as_server_user()
        )
    if done.returncode != 0:
        raise ServerError(f"{command[0]} failed:\n{log.read_text()}")


def _chown_tree(root: Path) -> None:
    """As root: the tree belongs to the server account, as initdb would leave it."""
    if os.geteuid() != 0:
        return
    account = pwd.getpwnam(SERVER_USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    for folder, folders, files in os.walk(root):
        for name in (*folders, *files):
            os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid)


def _scratch(prefix: str) -> Path:
    """A new private directory, in memory when it has room (see MEMORY)."""
    where = None
    with suppress(OSError):
        if shutil.disk_usage(MEMORY).free >= MEMORY_TO_SPARE:
            where = MEMORY
    return Path(tempfile.mkdtemp(prefix=prefix, dir=where))


def stored_cluster(bin_dir: Path) -> Path:
    """initdb's data directory for these binaries and options, made on first use."""
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout
    key = json.dumps([str(bin_dir), version, INITDB_OPTIONS])
    cluster = CLUSTERS / hashlib.sha256(key.encode()).hexdigest()[:16]
    if cluster.is_dir():
        return cluster
    # initdb runs as the server account, in a folder that account can reach (a
    # checkout under /root is not); the result is then moved into place whole.
    scratch = _scratch("guide-postgres-initdb-")
    try:
        _chown_tree(scratch)
        _run(
            [str(bin_dir / "initdb"), "-D", str(scratch / "data"), *INITDB_OPTIONS],
            scratch / "initdb.log",
        )
        CLUSTERS.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CLUSTERS, prefix=".new-"))
        try:
            shutil.copytree(scratch / "data", staging / "data", symlinks=True)
            # Another process may have stored the same cluster first: keep that one.
            with suppress(OSError):
                (staging / "data").rename(cluster)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cluster


def _start(bin_dir: Path, directory: Path, port: int) -> subprocess.Popen[bytes]:
    options = [f"--{name}={value}" for name, value in SETTINGS.items()]
    command = [
        str(bin_dir / "postgres"),
        "-D",
        str(directory / "data"),
        "-p",
        str(port),
        "-k",
        str(directory),
        *options,
    ]
    # Its own session: a Ctrl-C in the terminal reaches the command, not the
    # server, so the server stays up until the command has finished with it. The
    # server writes to its own copy of the log's descriptor; ours is closed.
    with (directory / "server.log").open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_as_server_user(),
        )


def _wait_ready(bin_dir: Path, process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            check=False,
        )
        if ready.returncode == 0:
            return True
        time.sleep(0.02)  # a copied cluster is ready in about 50 ms
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), then SIGKILL if the server does not go."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def throwaway_server() -> Iterator[Server]:
    """A private PostgreSQL server, stopped and deleted when the block ends."""
    bin_dir = binaries()
    directory = _scratch("guide-postgres-")
    process: subprocess.Popen[bytes] | None = None
    try:
        shutil.copytree(stored_cluster(bin_dir), directory / "data", symlinks=True)
        _chown_tree(directory)
        for _ in range(START_ATTEMPTS):
            port = free_port()
            process = _start(bin_dir, directory, port)
            if _wait_ready(bin_dir, process, port):
                break
            _stop(process)  # most likely another server took the port: retry
        else:
            log = (directory / "server.log").read_text()
            raise ServerError(f"PostgreSQL did not start:\n{log}")
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        yield Server(url, port, directory, process)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that the server is cleaned up."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _default_sigint() -> None:
    """In the command: Ctrl-C stops it, even if our parent ignored SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(command: Sequence[str]) -> int:
    """Run ``command`` against a throwaway server; its exit status."""
    # A shell ignores SIGINT for its background jobs; this script must not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with throwaway_server() as server:
            version = subprocess.run(
                [str(binaries() / "postgres"), "--version"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            print(
                f"{version}: throwaway server on port {server.port}, "
                f"data in {server.directory}",
                file=sys.stderr,
                flush=True,
            )
            env = {**os.environ, DATABASE_URL_VARIABLE: server.url}
            child = subprocess.Popen(command, env=env, preexec_fn=_default_sigint)
            try:
                return child.wait()
            except (KeyboardInterrupt, _Terminated):
                # Let the command stop first (pytest reports what it ran), then
                # the server goes.
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
                try:
                    child.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                raise
    except (KeyboardInterrupt, _Terminated) as stopped:
        return 130 if isinstance(stopped, KeyboardInterrupt) else 143
    except ServerError as error:
        print(f"tools/postgres.py: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="+", help="what to run, after --")
    return run(parser.parse_args(argv).command)


if __name__ == "__main__":
    sys.exit(main())
