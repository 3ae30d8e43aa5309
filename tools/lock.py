"""Re-pin every lock file from requirements.in, for Python 3.11.0 and later.

    make lock                  (runs: python3 tools/lock.py)

``requirements.txt`` pins ``requirements.in`` as written. Each
``requirements-sqlalchemy-X.Y.txt`` pins the same requirements with SQLAlchemy held
to the X.Y line. To add a lock for another line, create an empty
``requirements-sqlalchemy-X.Y.txt`` and run ``make lock``.

pip resolves as for Python 3.11.0 (``--python-version``, wheels only), so no pin
needs a later 3.11 than the README promises. Environment markers are evaluated by
the interpreter running this script, so it must be a 3.11 on Linux, like the
machines the site is built on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLDEST_PYTHON = "3.11.0"
SOURCE = ROOT / "requirements.in"
SQLALCHEMY = re.compile(r"^sqlalchemy(\[[^\]]*\])?\s*[~=<>!]", re.I)
LINE_LOCK = re.compile(r"^requirements-sqlalchemy-(\d+\.\d+)\.txt$")
HEADER = (
    "# Pinned by `make lock` (tools/lock.py) from requirements.in, for Python "
    f"{OLDEST_PYTHON}+{{held}}.\n# Do not edit: change requirements.in and run "
    "`make lock`.\n"
)


def locks() -> list[Path]:
    held = [p for p in ROOT.glob("requirements-*.txt") if LINE_LOCK.match(p.name)]
    return [ROOT / "requirements.txt", *sorted(held)]


def requirements_for(lock: Path) -> list[str]:
    """requirements.in as written, or with SQLAlchemy held to the lock's line."""
    lines = SOURCE.read_text().splitlines()
    line = LINE_LOCK.match(lock.name)
    if line is None:
        return lines
    held = [
        f"sqlalchemy{match[1] or ''}=={line[1]}.*"
        if (match := SQLALCHEMY.match(row))
        else row
        for row in lines
    ]
    if held == lines:
        sys.exit(f"{SOURCE.name} has no 'sqlalchemy... ~=' line to hold.")
    return held


def resolve(requirements: list[str]) -> list[str]:
    """Every distribution pip would install for them, as sorted name==version."""
    with tempfile.TemporaryDirectory() as tmp:
        source, report = Path(tmp, "requirements.in"), Path(tmp, "report.json")
        source.write_text("\n".join(requirements) + "\n")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run"]
        # --target: pip accepts --python-version only for a target folder.
        pip += ["--ignore-installed", "--only-binary=:all:", "--target", tmp]
        pip += ["--python-version", OLDEST_PYTHON, "--report", str(report)]
        subprocess.run([*pip, "-r", str(source)], check=True)
        installed = json.loads(report.read_text())["install"]
    pins = {p["metadata"]["name"]: p["metadata"]["version"] for p in installed}
    by_name = sorted(pins, key=lambda name: re.sub(r"[-_.]+", "-", name).lower())
    return [f"{name}=={pins[name]}" for name in by_name]


def main() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(
            f"make lock: run it with a Python 3.11 (this is {sys.version.split()[0]}), "
            "so markers resolve as on the oldest supported Python: "
            "make lock PYTHON=python3.11"
        )
    for lock in locks():
        line = LINE_LOCK.match(lock.name)
        held = f", SQLAlchemy {line[1]}.*" if line else ""
        pins = resolve(requirements_for(lock))
        lock.write_text(HEADER.format(held=held) + "\n".join(pins) + "\n")
        print(f"pinned {lock.name}: {len(pins)} distributions")


if __name__ == "__main__":
    main()
