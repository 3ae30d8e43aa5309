"""Measure the whole suite on SQLite and on PostgreSQL, alternately, in one run.

    .venv/bin/python tests/benchmarks/bench_engines.py [rounds]

Starts one throwaway PostgreSQL server (tools/postgres.py), then runs the whole
suite (cold site build included) on the default in-memory SQLite and on that
server, alternating, and prints each time and the PostgreSQL/SQLite ratio. The
issue's budget: PostgreSQL at most twice SQLite.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from guide_runtime.database import DATABASE_URL_VARIABLE  # noqa: E402
from tools.postgres import throwaway_server  # noqa: E402

SITE_DIRS = {"sqlite": "_build/html", "postgresql": "_build/postgresql-sqlalchemy-2.1"}


def suite(engine: str, url: str | None) -> float:
    """Seconds for one whole-suite run, its site built from scratch."""
    shutil.rmtree(ROOT / SITE_DIRS[engine], ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_VARIABLE}
    if url:
        env[DATABASE_URL_VARIABLE] = url
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:  # timed all the same; say what failed
        failed = [line for line in done.stdout.splitlines() if "FAILED" in line]
        print(f"the {engine} suite failed:", *failed, sep="\n  ", flush=True)
    return elapsed


def main(rounds: int) -> None:
    # SIGTERM (a timeout) must unwind too, so the server is stopped and removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    with throwaway_server() as server:
        for _ in range(rounds):
            times["sqlite"].append(suite("sqlite", None))
            times["postgresql"].append(suite("postgresql", server.url))
            print({k: [round(t, 1) for t in v] for k, v in times.items()}, flush=True)
    sqlite, postgresql = (statistics.median(times[k]) for k in ("sqlite", "postgresql"))
    print(
        f"median: SQLite {sqlite:.1f} s, PostgreSQL {postgresql:.1f} s, "
        f"ratio {postgresql / sqlite:.2f} (budget 2.0)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
