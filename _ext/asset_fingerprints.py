"""Pages are written again when one of the site's stylesheets or scripts changes.

Sphinx links each asset with its checksum (``guide.css?v=…``) as it writes a page,
and an incremental build writes only changed pages, so after an edit to
``_static/guide.css`` the others linked the old checksum, which the published server
lets readers cache for a year (``deploy/nginx.conf``). This extension keeps the
checksums of ``html_static_path`` in the environment; when one changed, every
document is written again (not re-read). Generated pages follow by their chrome.
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
