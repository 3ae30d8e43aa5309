"""A parallel build's forked readers and writers skip the main process's heap in
their garbage collections (_ext/frozen_heap.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.small_sites import small_conf

#: Records, in each process that reads or writes a page, how many objects the
#: garbage collector skips (gc.get_freeze_count()).
PROBE = """\
import gc
import os
from pathlib import Path


def _record(app, *args):
    with Path(app.srcdir, "frozen.txt").open("a") as seen:
        seen.write(f"{os.getpid()} {gc.get_freeze_count()}\\n")


def setup(app):
    app.connect("builder-inited", lambda app: _record(app))
    app.connect("doctree-read", _record)
    app.connect("html-page-context", _record)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
"""


def _frozen_by_process(tmp_path: Path, *extensions: str) -> dict[int, int]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "probe.py").write_text(PROBE)
    conf = small_conf("myst_parser", "probe", *extensions)
    (site / "conf.py").write_text(
        conf.replace("sys.path[:0] = [", f"sys.path[:0] = [{str(site)!r}, ")
    )
    # Enough pages for Sphinx to read them in forked processes (more than five).
    pages = [f"page{number}" for number in range(8)]
    toctree = "```{toctree}\n" + "\n".join(pages) + "\n```\n"
    (site / "index.md").write_text(f"# Home\n\n{toctree}")
    for page in pages:
        (site / f"{page}.md").write_text(f"# {page}\n\nSome text.\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-q",
            "-j",
            "3",
            site,
            site / "out",
        ],
        check=True,
        capture_output=True,
    )
    lines = (site / "frozen.txt").read_text().split("\n")
    pairs = [tuple(map(int, line.split())) for line in lines if line]
    main = pairs[0][0]  # builder-inited runs in the main process
    return {pid: count for pid, count in pairs if pid != main}


def test_forked_readers_and_writers_inherit_a_frozen_heap(tmp_path: Path) -> None:
    frozen = _frozen_by_process(tmp_path, "frozen_heap")
    assert len(frozen) >= 2, "the build forked no readers or writers: nothing tested"
    assert all(count > 0 for count in frozen.values()), frozen
