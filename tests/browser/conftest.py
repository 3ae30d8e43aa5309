"""The built site in a real browser: Debian's Chromium, driven by Playwright.

``make test-browser`` builds the site strictly (``make html``) and runs this folder
(``make test`` leaves it out, to stay fast). The built site is served by a local
``http.server`` on a free port; the browser is the ``chromium`` on this machine
(``apt-get install -y chromium``), never a download of Playwright's own.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.plugins.site import SITE_DIR

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium on this machine: install Debian's package with "
        "`apt-get install -y chromium` (make test-browser does so as root)",
        pytrace=False,
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Failed requests are caught in the browser; keep the test output clean."""


@pytest.fixture(scope="session")
def site_dir() -> Path:
    if not (SITE_DIR / "index.html").is_file():
        pytest.fail(
            f"no built site in {SITE_DIR}: run `make test-browser` (it builds first)",
            pytrace=False,
        )
    return SITE_DIR


@pytest.fixture(scope="session")
def site_url(site_dir: Path) -> Iterator[str]:
    """The built site, served on 127.0.0.1 at a free port: a non-canonical host."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()
