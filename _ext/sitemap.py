"""``sitemap.xml``: every published page of the built site, at its canonical URL.

Written when a build finishes, from each page's ``<link rel="canonical">`` in the
output folder, so an incremental build lists the whole site, generated pages
included (sphinx-sitemap lists only the pages a build wrote). ``sitemap_excludes``
and redirect pages (no canonical link) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape

from sphinx.application import Sphinx

CANONICAL = re.compile(rb'<link rel="canonical" href="([^"]+)"')
#: Output folders that hold no pages.
NOT_PAGES = {"_static", "_sources", "_images", ".doctrees"}


def published_pages(outdir: Path, excludes: list[str]) -> list[str]:
    """The canonical URLs of the pages in ``outdir``, sorted."""
    urls = []
    for page in outdir.rglob("*.html"):
        relative = page.relative_to(outdir)
        if NOT_PAGES & set(relative.parts) or relative.as_posix() in excludes:
            continue
        with page.open("rb") as file:
            found = CANONICAL.search(file.read(4096))
        if found:
            urls.append(found.group(1).decode())
    return sorted(urls)


def _write(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    urls = published_pages(outdir, app.config.sitemap_excludes)
    lines = [f"  <url><loc>{escape(url)}</loc></url>\n" for url in urls]
    (outdir / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        + "".join(lines)
        + "</urlset>\n"
    )


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_config_value("sitemap_excludes", [], "html", list)
    app.connect("build-finished", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
