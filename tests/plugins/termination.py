"""A run stopped with SIGTERM (a CI job's time limit, ``make`` being stopped) ends as
Ctrl-C does: pytest tears down what is set up, so a running test's PostgreSQL server
is stopped and its folder deleted, instead of outliving the run."""

from __future__ import annotations

import signal
import threading

import pytest


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Signal handlers belong to the main thread (xdist workers run tests there too).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
