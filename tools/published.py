"""The site's published addresses, and where moved pages went.

- ``deploy/published-pages.txt``: every page address ever published (relative to the
  site root, one a line). A new page is added to it; nothing is ever removed.
- ``deploy/moved-pages.toml``: a page's old address → its new address, declared once
  when a page is renamed or split. conf.py turns it into HTML redirect pages
  (sphinx-reredirects), ``tools/nginx.py`` into 301 answers.

``tests/site/test_publishing.py`` holds them to the pages: every published address
is a page or a moved page, and every page is published.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from posixpath import dirname, relpath

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
#: Source documents that are pages of the guide (conf.py's include_patterns).
PAGE_SOURCES = ("index.md", "guides/**/*.md")


def published_addresses(root: Path = ROOT) -> list[str]:
    lines = (root / "deploy" / "published-pages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def moved_pages(root: Path = ROOT) -> dict[str, str]:
    """Old address → new address (an ``#anchor`` may follow it)."""
    return tomllib.loads((root / "deploy" / "moved-pages.toml").read_text())["moved"]


def sphinx_redirects(moved: dict[str, str]) -> dict[str, str]:
    """sphinx-reredirects' ``redirects``: old docname → new URL, relative to it."""
    return {
        old.removesuffix(".html"): relpath(new, dirname(old) or ".")
        for old, new in moved.items()
    }


def page_addresses(root: Path = ROOT) -> set[str]:
    """Every page the sources make (``guides/x.md`` is ``guides/x.html``)."""
    return {
        path.relative_to(root).with_suffix(".html").as_posix()
        for pattern in PAGE_SOURCES
        for path in root.glob(pattern)
    }
