"""``built_site``: the checkout's site, built strictly once per run.

Built as a reader builds it (``make html``'s command, in a process of its own).
Every test that uses it runs in one xdist worker (its ``xdist_group``, with
``--dist loadgroup``), so a run builds the site once while the other workers run
the rest of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guide_runtime import configurations
from guide_runtime.configurations import ROOT

#: What `make html` builds; the browser suite (tests/browser) serves it.
SITE_DIR = ROOT / "_build" / "html"
SITE_GROUP = "built-site"

STRICT_BUILD = [
    sys.executable,
    "-m",
    "sphinx",
    "-b",
    "html",
    "-n",
    "-W",
    "--keep-going",
    "-q",
    "-j",
    # As make does (see SPHINX_JOBS in the Makefile): one process more than CPUs.
    str(len(os.sched_getaffinity(0)) + 1),
]


def site_dir() -> Path:
    """The default suite builds where `make html` does; another configuration's
    suite builds beside it, so the suites never overwrite each other's output."""
    here = configurations.current()
    if here == configurations.DEFAULT:
        return SITE_DIR
    return ROOT / "_build" / here.key / "html"


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each test is collected, before pytest-xdist reads the groups.
    if "built_site" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group(SITE_GROUP))


@pytest.fixture(scope="session")
def built_site() -> Path:
    """The site, built strictly (-n -W): a warning anywhere fails every site test."""
    out = site_dir()
    build = subprocess.run(
        [*STRICT_BUILD, str(ROOT), str(out)], cwd=ROOT, capture_output=True, text=True
    )
    if build.returncode != 0:
        pytest.fail(f"strict Sphinx build failed:\n{build.stderr}", pytrace=False)
    return out
