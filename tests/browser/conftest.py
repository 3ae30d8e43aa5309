"""The published artifact in a real browser: nginx serving it, Debian's Chromium.

``make test-browser`` builds the site and its artifact (``make dist``) and runs this
folder (``make test`` leaves it out, to stay fast). The artifact is unpacked into a
new folder and served by Debian's nginx with the config the repository ships
(``deploy/nginx.conf``, rendered by ``tools/nginx.py``), on a free loopback port,
under the published address's sub-path (``/orm-io/``): a non-canonical host, as a
preview is. The browser is the ``chromium`` on this machine (``apt-get install -y
chromium``), never a download of Playwright's own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from guide_runtime.configurations import ROOT
from tools import nginx

CHROMIUM_NAMES = ("chromium", "chromium-browser")
#: What the artifact says it was built for (manifest.json's base_path).
DIST = ROOT / "_build" / "dist"
#: A quiet, private browser: no network of its own, no GPU, no first-run pages.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


@pytest.fixture(scope="session")
def artifact() -> Path:
    found = sorted(DIST.glob("orm-io-docs-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not found:
        pytest.fail(
            f"no artifact in {DIST}: run `make test-browser` (it runs `make dist`)",
            pytrace=False,
        )
    return found[-1]


@pytest.fixture(scope="session")
def unpacked(artifact: Path) -> Iterator[Path]:
    """The artifact's top folder (site/, manifest.json, nginx.conf), unpacked."""
    into = Path(tempfile.mkdtemp(prefix="guide-artifact-"))
    into.chmod(0o755)  # nginx's workers (nobody, under root) read it
    try:
        yield nginx.unpack(artifact, into)
    finally:
        shutil.rmtree(into, ignore_errors=True)


@pytest.fixture(scope="session")
def manifest(unpacked: Path) -> dict:
    return json.loads((unpacked / "manifest.json").read_text())


@pytest.fixture(scope="session")
def site_dir(unpacked: Path) -> Path:
    return unpacked / "site"


@pytest.fixture(scope="session")
def base_path(manifest: dict) -> str:
    return manifest["base_path"]


@pytest.fixture(scope="session")
def site_url(site_dir: Path, base_path: str) -> Iterator[str]:
    """The artifact served by nginx under its sub-path: ``http://127.0.0.1:PORT/orm-io/``."""
    try:
        with nginx.serving(site_dir, base_path) as url:
            yield url
    except nginx.NginxError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
            # A fresh profile (Playwright makes a new --user-data-dir for each).
        )
        try:
            yield launched
        finally:
            launched.close()
