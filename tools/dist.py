"""``make dist``: the built site as a versioned artifact any static web server serves.

    python tools/dist.py [--site _build/html] [--out _build/dist]

Writes ``<out>/orm-io-docs-<version>.tar.gz``: one folder ``orm-io-docs-<version>/``
holding ``site/`` (what a web server publishes: the built pages, without Sphinx's
``.doctrees/``, ``.buildinfo`` or any other hidden file), ``manifest.json`` (version,
commit, build date, published address, the tested configurations) and ``nginx.conf``
(the shipped server config, ``deploy/nginx.conf``, with the moved pages' redirects
for the published sub-path; ``tools/nginx.py`` renders it). The pages link each
other, their assets and the search index relatively, so the same ``site/`` serves at
the root or under any sub-path; the 404 page's links are absolute under the
published address's path (``manifest.json``: ``base_path``), as an error page must
be. The archive is reproducible: sorted, owned by root, every time stamp the commit's.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import time
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from guide_runtime.configurations import load_records  # noqa: E402
from implicit_io import __version__  # noqa: E402
from implicit_io.rule_links import docs_base_url  # noqa: E402
from tools import nginx  # noqa: E402

NAME = "orm-io-docs"
#: Build output a web server must not publish (besides any hidden file or folder).
NOT_PUBLISHED = {".doctrees", ".buildinfo"}


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def published_files(site: Path) -> list[Path]:
    """The files of ``site`` a web server publishes, sorted."""
    return sorted(
        path
        for path in site.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(site).parts)
    )


#: A fingerprinted asset link: Sphinx writes ?v=<crc32 of the file> after its path.
FINGERPRINTED = re.compile(
    rb'<(?:link|script)\b[^>]*?\b(?:href|src)="([^"?#]+)\?v=([0-9a-f]{8})"'
)
#: Furo rewrites pygments.css when the build finishes (adding its dark-mode styles),
#: after Sphinx fingerprinted Sphinx's own version: its fingerprint follows the
#: highlighting style, not the file's bytes.
REWRITTEN_AFTER_FINGERPRINTING = {"pygments.css"}


def stale_fingerprints(
    site: Path, files: list[Path], base_path: str = "/"
) -> list[str]:
    """Asset links whose fingerprint is not their file's checksum (Sphinx computes
    it when it writes a page: after an incremental build, a page it did not rewrite
    still names an edited stylesheet or script by its old checksum, which a cache
    that keeps fingerprinted files a year would serve forever)."""
    stale = []
    checksums: dict[Path, str] = {}
    for page in files:
        if page.suffix != ".html":
            continue
        for link, fingerprint in FINGERPRINTED.findall(page.read_bytes()):
            path = link.decode()
            if path.rsplit("/", 1)[-1] in REWRITTEN_AFTER_FINGERPRINTING:
                continue
            if path.startswith("/"):  # the 404 page's, under the published path
                asset = (site / path.removeprefix(base_path)).resolve()
            else:
                asset = (page.parent / path).resolve()
            if asset not in checksums:
                data = (
                    asset.read_bytes().translate(None, b"\r")
                    if asset.is_file()
                    else b""
                )
                checksums[asset] = f"{zlib.crc32(data):08x}" if data else "missing"
            if checksums[asset] != fingerprint.decode():
                stale.append(
                    f"{page.relative_to(site)}: {path}?v={fingerprint.decode()}"
                )
    return stale


def tested_configurations() -> list[dict[str, object]]:
    """Every recorded suite run (proofs/), with its outcomes counted."""
    found = []
    for configuration, record in load_records(ROOT).items():
        counts = Counter(record.outcomes.values())
        found.append(
            {
                "engine": configuration.engine,
                "sqlalchemy": configuration.sqlalchemy,
                "versions": record.versions,
                "outcomes": dict(sorted(counts.items())),
                "current": record.stale is None,
                "stale": record.stale,
            }
        )
    return found


def manifest(site: Path, files: list[Path], commit_time: int) -> dict[str, object]:
    base_url = docs_base_url()
    commit = _git("rev-parse", "HEAD")
    return {
        "name": NAME,
        "version": __version__,
        "commit": commit or None,
        "commit_is_dirty": bool(commit) and bool(_git("status", "--porcelain")),
        "build_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(commit_time)),
        "published_url": base_url,
        "base_path": urlsplit(base_url).path,
        "tested_configurations": tested_configurations(),
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
        "sha256": hashlib.sha256(
            b"".join(
                path.relative_to(site).as_posix().encode()
                + b"\0"
                + hashlib.sha256(path.read_bytes()).digest()
                for path in files
            )
        ).hexdigest(),
    }


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def build_artifact(site: Path, out: Path) -> Path:
    if not (site / "index.html").is_file():
        raise SystemExit(f"dist: no built site in {site}: run `make html` first")
    commit_time = int(_git("log", "-1", "--format=%ct") or time.time())
    files = published_files(site)
    stale = stale_fingerprints(site, files, urlsplit(docs_base_url()).path)
    if stale:
        raise SystemExit(
            "dist: pages name assets by an old fingerprint (rebuild with "
            "`sphinx-build -a`, as `make dist` does):\n  " + "\n  ".join(stale[:10])
        )
    data = manifest(site, files, commit_time)
    top = f"{NAME}-{data['version']}"
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{top}.tar.gz"
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in files:
            name = f"{top}/site/{path.relative_to(site).as_posix()}"
            _add(tar, name, path.read_bytes(), commit_time)
        text = json.dumps(data, indent=2) + "\n"
        _add(tar, f"{top}/manifest.json", text.encode(), commit_time)
        config = nginx.render_config(base_path=str(data["base_path"]))
        _add(tar, f"{top}/nginx.conf", config.encode(), commit_time)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "dist")
    options = parser.parse_args(argv)
    archive = build_artifact(options.site, options.out)
    size = archive.stat().st_size
    shown = archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive
    print(f"dist: {shown} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
