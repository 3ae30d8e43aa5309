"""``sitemap.xml``: every published page of the built site, at its canonical URL.

Written when a build finishes, from the pages in the output folder (each page's
``<link rel="canonical">``, which ``html_baseurl`` gives every page), so it lists the
whole site after an incremental build too, and the generated test-code and module
pages with the rest. (sphinx-sitemap collects pages as they are written: after a
one-page edit its sitemap held that page alone, and never the generated pages.)
Pages listed in ``sitemap_excludes`` (search, the index, the 404 page) are left out,
as are redirect pages, which have no canonical link.
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
