"""``built_site``: the checkout's site, built strictly once per run."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from guide_runtime import configurations
from guide_runtime.configurations import ROOT

#: What `make html` builds; the browser suite (tests/browser) serves it.
SITE_DIR = ROOT / "_build" / "html"


def site_dir() -> Path:
    """The default suite builds where `make html` does; another configuration's
    suite builds beside it, so the suites never overwrite each other's output."""
    here = configurations.current()
    return (
        ROOT
        / "_build"
        / ("html" if here == configurations.DEFAULT else f"{here.key}/html")
    )


STRICT_BUILD = [
    sys.executable,
    "-m",
    "sphinx",
    "-b",
    "html",
    "-n",
    "-W",
    "--keep-going",
    "-j",
    # As make does (see SPHINX_JOBS in the Makefile): one process more than CPUs.
    str(len(os.sched_getaffinity(0)) + 1),
]


# The strict site build runs in a second process while the other tests run, so
# `make test` costs about max(build, tests) rather than their sum on two cores.
# Under pytest-xdist (`-n auto`) the controller starts it, for a whole-suite run,
# before the workers start; they wait for it under a file lock and take its result
# from the lock file. Otherwise the first worker whose test needs the site builds
# it, under the same lock, and the others take its result.
_site_build: subprocess.Popen[str] | None = None
SITE_BUILD_LOCK = ROOT / "_build" / ".site-build.lock"
#: The worker input naming the controller's build of the site (by a token).
SITE_BUILD_INPUT = "guide_site_build"
_SITE_BUILD_TOKEN = pytest.StashKey[str]()


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _start_site_build() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STRICT_BUILD, str(ROOT), str(site_dir())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    global _site_build
    wants_site = any(
        "built_site" in getattr(item, "fixturenames", ()) for item in session.items
    )
    if wants_site and _site_build is None and not _xdist_worker(session.config):
        _site_build = _start_site_build()


def _locked(path: Path) -> IO[str]:
    """``path`` opened and locked for this process alone, until it is closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    return lock


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[IO[str]]:
    """``path`` locked for the block: xdist workers, and suites run side by side,
    take turns."""
    with _locked(path) as lock:
        yield lock


def _record_site_build(
    lock: IO[str], run: str | None, process: subprocess.Popen[str]
) -> dict[str, object]:
    """The build's result, once it ends, written into the lock file under ``run``."""
    output, _ = process.communicate()
    result = {"run": run, "site": str(site_dir())}
    result |= {"returncode": process.returncode, "output": output}
    lock.seek(0)
    lock.truncate(0)
    lock.write(json.dumps(result))
    return result


def _whole_suite(config: pytest.Config) -> bool:
    """No test named, selected or deselected on the command line."""
    named = config.args_source != pytest.Config.ArgsSource.TESTPATHS
    return not (named or config.option.keyword or config.option.markexpr)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    distributing = config.pluginmanager.has_plugin("dsession")
    if not distributing or _xdist_worker(config) or not _whole_suite(config):
        return
    token = f"controller-{uuid.uuid4().hex}"
    lock = _locked(SITE_BUILD_LOCK)  # held until the result is in it
    process = _start_site_build()

    def record() -> None:
        try:
            _record_site_build(lock, token, process)
        finally:
            lock.close()

    threading.Thread(target=record, daemon=True).start()
    config.stash[_SITE_BUILD_TOKEN] = token


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """(xdist, in the controller) Tell each worker which build of the site is its."""
    token = node.config.stash.get(_SITE_BUILD_TOKEN, None)
    if token is not None:
        node.workerinput[SITE_BUILD_INPUT] = token


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest) -> Path:
    """The site, built strictly (-n -W): a warning anywhere fails every site test."""
    # Under xdist the workers share one build per run: the controller's, or else the
    # first worker's; the others find its result in the lock file, by its id.
    workerinput = getattr(request.config, "workerinput", {})
    run = workerinput.get(SITE_BUILD_INPUT) or workerinput.get("testrunuid")
    key = {"run": run, "site": str(site_dir())}
    with file_lock(SITE_BUILD_LOCK) as lock:
        lock.seek(0)
        try:
            result = json.loads(lock.read())
        except ValueError:
            result = {}
        if run is None or {k: result.get(k) for k in key} != key:
            result = _record_site_build(lock, run, _site_build or _start_site_build())
    if result["returncode"] != 0:
        pytest.fail(f"strict Sphinx build failed:\n{result['output']}", pytrace=False)
    return site_dir()
