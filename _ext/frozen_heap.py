"""Processes forked by a parallel build leave the main process's heap alone.

With ``-j``, Sphinx forks the processes that read pages (which run the examples)
and those that write them. Each child starts with a copy of the main process's
heap, shared with it until written. Python's cyclic garbage collector visits every
object it tracks, and the children allocate enough to trigger full collections:
each one walks the whole inherited heap again, and by touching every object's
header copies every memory page of it. Just before the forks the main process
moves what it holds into the collector's permanent generation (``gc.freeze()``),
which collections skip. Frozen objects stay until the process ends: with
``sphinx-build`` it ends with the build. Handing them back at the end would cost
every build a full collection at exit (measured: about 0.1 s); a program that runs
parallel builds in itself can call ``gc.unfreeze()`` after each.
"""

from __future__ import annotations

import gc
from typing import Any

from sphinx.application import Sphinx


def _freeze_before_forking(app: Sphinx, *args: Any) -> None:
    if app.parallel > 1:
        gc.freeze()


def setup(app: Sphinx) -> dict[str, bool]:
    # After executed_store.py loads the harness for the children to share (priority
    # 800), before it forks its processes that work ahead (priority 900).
    app.connect("builder-inited", _freeze_before_forking, priority=850)
    app.connect("env-before-read-docs", _freeze_before_forking, priority=900)
    app.connect("write-started", _freeze_before_forking, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
