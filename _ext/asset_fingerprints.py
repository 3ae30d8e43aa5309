"""Pages are written again when one of the site's stylesheets or scripts changes.

Sphinx links every stylesheet and script with its checksum (``guide.css?v=…``),
computed when it writes a page, and an incremental build writes only the pages
whose sources changed: after an edit to ``_static/guide.css``, every other page
kept linking the old checksum. The published server keeps fingerprinted files a
year (``deploy/nginx.conf``), so those pages would have shown the old stylesheet
from a reader's cache. This extension keeps the checksums of the files in
``html_static_path`` in the environment and, when one changed, has every document
written again (``env-get-updated``: without reading it again). The generated pages
follow on their own (``generated_pages.py`` keys them by their rendered chrome).
"""

from __future__ import annotations

import zlib
from pathlib import Path

ENV_KEY = "guide_static_checksums"


def static_checksums(confdir: str | Path, static_path: list[str]) -> dict[str, str]:
    """Each file of ``static_path`` (relative to ``confdir``) → its CRC-32."""
    found = {}
    for folder in static_path:
        root = Path(confdir, folder)
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file():
                data = path.read_bytes().translate(None, b"\r")
                found[path.as_posix()] = f"{zlib.crc32(data):08x}"
    return found


def _changed_assets_rewrite_every_page(app, env) -> list[str]:
    now = static_checksums(app.confdir, app.config.html_static_path)
    before = getattr(env, ENV_KEY, None)
    setattr(env, ENV_KEY, now)
    if before is None or before == now:
        return []
    return sorted(env.found_docs)


def setup(app):
    app.connect("env-get-updated", _changed_assets_rewrite_every_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
