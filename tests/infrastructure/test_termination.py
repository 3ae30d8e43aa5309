"""A run stopped with SIGTERM tears down what it set up (plugins/termination.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guide_runtime.configurations import ROOT

#: A test whose fixture stands for a PostgreSQL server: set up, then torn down.
HELD = """
import pathlib, time
import pytest

@pytest.fixture
def server():
    yield
    pathlib.Path("torn-down").touch()

def test_runs_until_stopped(server):
    # Written here, not in the fixture: a signal that lands in the fixture before
    # its yield would stop it before it has anything to tear down.
    pathlib.Path("started").touch()
    time.sleep(60)
"""


def test_a_run_stopped_with_sigterm_tears_down_its_fixtures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('pytest_plugins = ["tests.plugins.termination"]\n')
    pytester.makepyfile(test_held=HELD)
    # The plugin from here; no installed plugin (the run needs none, and each one
    # costs the run's start).
    environment = {"PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=pytester.path,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    started = Path(pytester.path, "started")
    deadline = time.monotonic() + 30
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), run.communicate()[0].decode()
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=30)[0].decode()
    assert Path(pytester.path, "torn-down").exists(), output
    assert run.returncode != 0, output
