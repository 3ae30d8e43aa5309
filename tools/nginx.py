"""nginx serving the built site or ``make dist``'s artifact, as it is published.

    python tools/nginx.py [ARTIFACT.tar.gz | SITE_FOLDER] [--base-path /orm-io/]

serves it on a free loopback port until Ctrl-C (the browser suite does the same
from ``tests/browser/conftest.py`` with :func:`serving`). The config is the
repository's ``deploy/nginx.conf``, rendered by :func:`render_config` with the moved
pages' redirects (``deploy/moved-pages.toml``). nginx is Debian's package
(``.ci/install-nginx`` installs it when missing); the server runs from a new
temporary folder (its pid, logs and temporary files) and is stopped however the run
ends: when the block ends, on an error, and, since it is told to stop when its
parent dies, when the process that started it is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tools.published import moved_pages  # noqa: E402

TEMPLATE = ROOT / "deploy" / "nginx.conf"
#: Where the artifact's nginx.conf expects things unless rendered otherwise.
DEPLOYED = {
    "site": "/srv/orm-io-docs/site",
    "listen": "80",
    "runtime": "/run/orm-io-docs",
}
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PR_SET_PDEATHSIG = 1


class NginxError(RuntimeError):
    """nginx is missing, or did not start."""


def binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not found:
        raise NginxError(
            "no nginx on this machine: install Debian's package with "
            "`apt-get install -y nginx` (.ci/install-nginx does so as root)"
        )
    return found


def _moved_locations(base_path: str, moved: dict[str, str]) -> str:
    lines = []
    if base_path != "/":
        lines.append(
            f"        location = {base_path.rstrip('/')} {{ return 301 {base_path}; }}"
        )
    for old, new in sorted(moved.items()):
        lines.append(
            f"        location = {base_path}{old} {{ return 301 {base_path}{new}; }}"
        )
    return "\n".join(lines) + "\n"


def render_config(
    base_path: str = "/",
    site: str | Path = DEPLOYED["site"],
    listen: str = DEPLOYED["listen"],
    runtime: str | Path = DEPLOYED["runtime"],
    moved: dict[str, str] | None = None,
) -> str:
    """deploy/nginx.conf for the site at ``site``, published under ``base_path``."""
    if not (base_path.startswith("/") and base_path.endswith("/")):
        raise ValueError(f"the base path starts and ends with '/': {base_path!r}")
    values = {
        "@MOVED@\n": _moved_locations(
            base_path, moved_pages() if moved is None else moved
        ),
        "@BASE_PATH@": base_path,
        "@SITE@": str(site).rstrip("/"),
        "@LISTEN@": listen,
        "@RUNTIME@": str(runtime),
    }
    text = TEMPLATE.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """(In the child, before exec) SIGTERM when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGTERM: the master stops its workers), then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def unpack(artifact: Path, into: Path) -> Path:
    """The artifact's one top folder, unpacked into ``into``."""
    with tarfile.open(artifact) as tar:
        # Extraction filters came with Python 3.11.4; Debian 12's 3.11.2 has none.
        # The artifact is our own, made by tools/dist.py: members are plain files.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    (top,) = [path for path in into.iterdir() if path.is_dir()]
    return top


@contextlib.contextmanager
def serving(
    site: Path, base_path: str = "/", moved: dict[str, str] | None = None
) -> Iterator[str]:
    """nginx serving ``site`` under ``base_path`` on a free loopback port: its URL
    (``http://127.0.0.1:PORT/base/path/``), until the block ends."""
    nginx = binary()
    runtime = Path(tempfile.mkdtemp(prefix="guide-nginx-"))
    # Run as root, nginx's workers are `nobody`: they read the site and write here.
    runtime.chmod(0o755)
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(3):
            port = free_port()
            config = runtime / "nginx.conf"
            config.write_text(
                render_config(
                    base_path, site.resolve(), f"127.0.0.1:{port}", runtime, moved
                )
            )
            process = subprocess.Popen(
                [
                    nginx,
                    "-p",
                    str(runtime),
                    "-c",
                    str(config),
                    "-e",
                    str(runtime / "error.log"),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if _listening(port):
                    break
                time.sleep(0.05)
            if process.poll() is None and _listening(port):
                break
            _stop(process)  # most likely another server took the port: retry
        else:
            log = runtime / "error.log"
            raise NginxError(
                f"nginx did not start:\n{log.read_text() if log.exists() else ''}"
            )
        yield f"http://127.0.0.1:{port}{base_path}"
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(runtime, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?", default=ROOT / "_build" / "html")
    parser.add_argument("--base-path", default="/orm-io/")
    options = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        site = options.site
        if site.is_file():
            into = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            Path(into).chmod(0o755)
            site = unpack(site, into) / "site"
        url = stack.enter_context(serving(site, options.base_path))
        print(f"serving {site} at {url} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
