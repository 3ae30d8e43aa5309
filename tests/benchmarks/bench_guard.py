"""Measure the guard's overhead and write the file guides/enforcement.md shows.

    make bench        (or: .venv/bin/python tests/benchmarks/bench_guard.py)

Run it on a quiet machine after changing the guard or the pinned versions, and
commit guides/measured/guard-overhead.json. The suite fails while the file names
other versions than requirements.txt pins (tests/test_enforcement.py).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "_ext")]

from guide_runtime.measurement import Machine, Measurement  # noqa: E402
from snippets.enforcement import _overhead_rows  # noqa: E402

OUTPUT = ROOT / "guides" / "measured" / "guard-overhead.json"
#: What the guard's timings depend on, recorded with their versions.
PACKAGES = ("SQLAlchemy", "aiosqlite", "greenlet")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    load_average = os.getloadavg()[0]
    rows = asyncio.run(_overhead_rows(iterations=200, rounds=15))
    measurement = Measurement(
        measured=datetime.date.today(),
        machine=Machine(
            cpus=os.cpu_count() or 1, cpu_model=cpu_model(), load_average=load_average
        ),
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        packages={name: metadata.version(name) for name in PACKAGES},
        rows=rows,
    )
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(measurement.model_dump_json(indent=2) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    for row in rows:
        print(" | ".join(row))


if __name__ == "__main__":
    main()
