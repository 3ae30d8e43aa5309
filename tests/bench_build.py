"""Measure the cost of executed docs: the real build vs the same pages built plainly.

    .venv/bin/python tests/bench_build.py [rounds]

"Plain" swaps the captured-run directive for one that renders nothing, so the
difference is the time spent running snippets during the build. Both variants are
built cold, alternately, in one run on this machine; only ratios are reported.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = (".venv", "_build", ".git", "__pycache__", ".*_cache")
PLAIN_DIRECTIVE = """
from docutils.parsers.rst import Directive, directives

class CapturedRun(Directive):
    required_arguments = 1
    option_spec = {"expect": directives.unchanged, "seed": directives.unchanged,
                   "show-result": directives.flag}
    def run(self):
        return []

def setup(app):
    app.add_directive("captured-run", CapturedRun)
    return {"parallel_read_safe": True}
"""


def build(source: Path, *extra: str) -> float:
    out = source / "_build" / "html"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", *extra]
    started = time.perf_counter()
    subprocess.run([*command, str(source), str(out)], check=True)
    return time.perf_counter() - started


def main(rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        real, plain = Path(tmp, "real"), Path(tmp, "plain")
        for copy in (real, plain):
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*SKIP))
        (plain / "_ext" / "captured_run.py").write_text(PLAIN_DIRECTIVE)
        times: dict[str, list[float]] = {"real": [], "plain": [], "warm": []}
        for _ in range(rounds):
            for name, source in (("real", real), ("plain", plain)):
                shutil.rmtree(source / "_build", ignore_errors=True)
                times[name].append(build(source))
            page = real / "guides" / "eager-loading.md"
            page.write_text(page.read_text() + "\n")
            times["warm"].append(build(real))
    real_s, plain_s, warm_s = (
        statistics.median(times[name]) for name in ("real", "plain", "warm")
    )
    print(f"cold build, executed docs : {real_s:.2f} s (median of {rounds})")
    print(f"cold build, plain         : {plain_s:.2f} s")
    print(f"warm rebuild, one page    : {warm_s:.2f} s")
    print(f"executed / plain ratio    : {real_s / plain_s:.2f}")
    print(f"warm / cold ratio         : {warm_s / real_s:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
