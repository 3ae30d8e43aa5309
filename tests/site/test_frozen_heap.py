"""A parallel build's forked readers and writers skip the main process's heap in
their garbage collections (_ext/frozen_heap.py)."""

from __future__ import annotations

from pathlib import Path

from tests.site.small_sites import build_in_parallel, probe_site

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
    # Enough pages for Sphinx to read them in forked processes (more than five).
    site = probe_site(tmp_path / "site", PROBE, *extensions, pages=8)
    build_in_parallel(site, jobs=3)
    lines = (site / "frozen.txt").read_text().split("\n")
    pairs = [tuple(map(int, line.split())) for line in lines if line]
    main = pairs[0][0]  # builder-inited runs in the main process
    return {pid: count for pid, count in pairs if pid != main}


def test_forked_readers_and_writers_inherit_a_frozen_heap(tmp_path: Path) -> None:
    frozen = _frozen_by_process(tmp_path, "frozen_heap")
    assert len(frozen) >= 2, "the build forked no readers or writers: nothing tested"
    assert all(count > 0 for count in frozen.values()), frozen
