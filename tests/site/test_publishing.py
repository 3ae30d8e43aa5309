"""The site as published: its addresses stay, moved pages redirect, the reading path
is the Next/Previous order, and the 404 page and sitemap are built."""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from pathlib import Path
from urllib.parse import urljoin

from sphinx.builders.html._assets import _file_checksum_inner

from guide_runtime.configurations import ROOT
from implicit_io.rule_links import docs_base_url
from tests.site.small_sites import build_small_site, small_conf
from tools.dist import build_artifact, stale_fingerprints
from tools.published import (
    moved_pages,
    page_addresses,
    published_addresses,
    sphinx_redirects,
)

# --- Published addresses never disappear ----------------------------------------


def test_every_published_address_is_a_page_or_redirects() -> None:
    pages, moved = page_addresses(), moved_pages()
    lost = [a for a in published_addresses() if a not in pages and a not in moved]
    assert not lost, (
        "published pages that are gone without a redirect: declare where each went "
        f"in deploy/moved-pages.toml: {lost}"
    )


def test_every_page_is_in_the_published_list() -> None:
    unlisted = sorted(page_addresses() - set(published_addresses()))
    assert not unlisted, f"add these pages to deploy/published-pages.txt: {unlisted}"


def test_moved_pages_lead_to_pages_and_not_to_each_other() -> None:
    pages = page_addresses()
    for old, new in moved_pages().items():
        assert old not in pages, f"{old} is both a page and moved"
        assert new.split("#")[0] in pages, f"{old} moved to {new}, which is no page"


def test_a_renamed_page_keeps_its_old_address(tmp_path: Path) -> None:
    """The mechanism conf.py uses, on a small site whose page was renamed."""
    site = tmp_path / "site"
    (site / "guides").mkdir(parents=True)
    moved = {"guides/old-name.html": "guides/new-name.html#second"}
    conf = small_conf(
        "myst_parser",
        "sphinx_reredirects",
        redirects=sphinx_redirects(moved),
        redirect_html_template_file=str(ROOT / "deploy" / "redirect.html"),
    )
    (site / "conf.py").write_text(conf)
    (site / "index.md").write_text("# Home\n\n```{toctree}\nguides/new-name\n```\n")
    (site / "guides" / "new-name.md").write_text("# New\n\n## Second\n\nText.\n")
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    redirect = (site / "_build" / "guides" / "old-name.html").read_text()
    assert 'content="0; url=new-name.html#second"' in redirect
    assert 'href="new-name.html#second"' in redirect  # a link, without scripts too
    assert '<html lang="en">' in redirect and "<title>" in redirect


# --- The built site ---------------------------------------------------------------


def test_moved_pages_are_redirect_pages_in_the_site(built_site: Path) -> None:
    for old, new in moved_pages().items():
        target = urljoin(old, new)
        page = (built_site / old).read_text()
        found = re.search(r'url=([^"]+)"', page)
        assert found and urljoin(old, found.group(1)) == target, (old, page)


def test_the_sitemap_lists_every_page_at_its_canonical_url(built_site: Path) -> None:
    sitemap = (built_site / "sitemap.xml").read_text()
    listed = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert listed == sorted(set(listed))
    expected = {docs_base_url() + address for address in page_addresses()}
    assert expected <= set(listed), sorted(expected - set(listed))
    assert not {u for u in listed if u.endswith(("/404.html", "/search.html"))}
    for url in listed:
        page = built_site / url.removeprefix(docs_base_url())
        assert f'<link rel="canonical" href="{url}"' in page.read_text()


def test_the_404_page_has_search_and_a_way_home(built_site: Path) -> None:
    page = (built_site / "404.html").read_text()
    prefix = re.sub(r"^https?://[^/]+", "", docs_base_url())
    article = page[page.index("<article") : page.index("</article>")]
    assert f'action="{prefix}search.html"' in article
    assert f'href="{prefix}index.html"' in article
    # Served for any unknown URL below the prefix: no link may be relative.
    relative = re.findall(r'(?:href|src|action)="(?![/#]|https?:)([^"]+)"', page)
    assert not relative, relative[:5]


def _next_page(built_site: Path, address: str) -> str | None:
    page = (built_site / address).read_text()
    found = re.search(r'<a class="next-page" href="([^"]+)"', page)
    return urljoin(address, found.group(1)) if found else None


def test_next_follows_the_new_engineers_reading_path(built_site: Path) -> None:
    """The landing page's path for a new engineer is what Next walks through."""
    home = (built_site / "index.html").read_text()
    start = home.index("New to async SQLAlchemy")
    path_text = home[start : home.index("</dd>", start)]
    path = [
        urljoin("index.html", href.split("#")[0])
        for href in re.findall(r'href="([^"]+)"', path_text)
        if "glossary" not in href
    ]
    assert len(path) >= 8, path  # concepts, policy, eager loading, counting, 4 rules
    walked = [path[0]]
    while len(walked) < len(path) + 2 and (
        following := _next_page(built_site, walked[-1])
    ):
        walked.append(following)
    # Each step of the path comes next, or after its section's index page.
    position = 0
    for address in path[1:]:
        step = walked.index(address)
        assert step - position <= 2, (address, walked)
        position = step


# --- The artifact (make dist) ------------------------------------------------


def test_the_artifact_holds_only_what_a_server_publishes(
    built_site: Path, tmp_path: Path
) -> None:
    archive = build_artifact(built_site, tmp_path)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        (top,) = {name.split("/")[0] for name in names}
        manifest = json.load(tar.extractfile(f"{top}/manifest.json"))
        config = tar.extractfile(f"{top}/nginx.conf").read().decode()
    assert top == f"orm-io-docs-{manifest['version']}"
    site = [name.removeprefix(f"{top}/site/") for name in names if "/site/" in name]
    assert "index.html" in site and "404.html" in site and "sitemap.xml" in site
    assert not [
        name for name in site if any(p.startswith(".") for p in name.split("/"))
    ]
    assert (
        manifest["base_path"]
        == "/orm-io/"
        == re.sub(r"^https?://[^/]+", "", docs_base_url())
    )
    assert manifest["files"] == len(site)
    engines = {
        (c["engine"], c["sqlalchemy"]) for c in manifest["tested_configurations"]
    }
    assert ("sqlite", "2.1") in engines
    assert (
        "location /orm-io/ {" in config and "error_page 404 /orm-io/404.html;" in config
    )
    # The same commit makes the same archive (but for the build date it records).
    again = build_artifact(built_site, tmp_path / "again")
    with tarfile.open(again) as tar:
        assert tar.getnames() == names


def test_a_page_naming_an_asset_by_an_old_fingerprint_is_caught(tmp_path: Path) -> None:
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "a.css").write_text("body {}")
    fresh = f"{zlib.crc32(b'body {}'):08x}"
    page = tmp_path / "index.html"
    page.write_text(
        f'<link href="_static/a.css?v={fresh}"><script src="_static/a.css?v=0badf00d">'
    )
    assert stale_fingerprints(tmp_path, [page]) == [
        "index.html: _static/a.css?v=0badf00d"
    ]


def test_an_edited_stylesheet_is_linked_by_its_new_fingerprint_everywhere(
    tmp_path: Path,
) -> None:
    """After an incremental build, no page names the old file (asset_fingerprints)."""
    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    conf = small_conf(
        "myst_parser",
        "asset_fingerprints",
        html_static_path=["_static"],
        html_css_files=["site.css"],
    )
    (site / "conf.py").write_text(conf)
    (site / "index.md").write_text("# Home\n\n```{toctree}\nother\n```\n")
    (site / "other.md").write_text("# Other\n\nText.\n")
    stylesheet = site / "_static" / "site.css"
    stylesheet.write_text("body { color: black; }\n")
    assert build_small_site(site).returncode == 0
    stylesheet.write_text("body { color: navy; }\n")
    # Sphinx remembers each file's checksum for its process; `make html` is a new
    # process every time, this test's builds share one.
    _file_checksum_inner.cache_clear()
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    out = site / "_build"
    pages = [out / "index.html", out / "other.html"]
    assert stale_fingerprints(out, pages) == []
    fresh = f"{zlib.crc32(stylesheet.read_bytes()):08x}"
    assert all(f"site.css?v={fresh}" in page.read_text() for page in pages)
