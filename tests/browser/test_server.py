"""The artifact as nginx publishes it: the 404 page, sitemap, cache headers,
compression, moved pages, and the same site served from a server's root.

HTTP checks ask the server directly (urllib, no redirects followed); what a reader
sees is checked in Chromium.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser

from implicit_io.rule_links import docs_base_url
from tools import nginx
from tools.published import moved_pages, page_addresses

YEAR = 365 * 24 * 3600
SEARCH_DONE = (
    "() => document.querySelector('#search-results .search-summary')?.innerText"
)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body, as the server sent them."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, _headers(response), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _headers(error), error.read()


def _headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


# --- The 404 page -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["nope", "guides/rules/io999.html", "guides/a/b/c/", "_static/gone.css"]
)
def test_any_unknown_address_gets_the_guides_404_page(site_url: str, address: str):
    status, headers, body = fetch(site_url + address)
    assert status == 404
    assert b"<title>Page not found" in body
    assert headers["cache-control"] == "no-cache"


def test_the_404_page_is_themed_with_search_and_a_link_home(
    browser: Browser, site_url: str
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    failed: list[str] = []
    # Leaving the search page cancels its excerpts' fetches: not a failure.
    page.on(
        "requestfailed",
        lambda request: (
            request.failure == "net::ERR_ABORTED" or failed.append(request.url)
        ),
    )
    try:
        page.goto(site_url + "guides/deep/mistyped-link.html")
        # The theme's stylesheet applied: Furo's page layout, not a bare document.
        assert page.locator("link[href*='furo.css']").count() == 1
        assert (
            page.evaluate(
                "() => getComputedStyle(document.querySelector('.page')).display"
            )
            == "flex"
        )
        box = page.locator("article").get_by_role("searchbox", name="Search the guide")
        assert box.is_visible()
        box.fill("MissingGreenlet")
        box.press("Enter")
        page.wait_for_url("**/search.html?q=MissingGreenlet")
        page.wait_for_function(SEARCH_DONE)
        assert page.locator("#search-results ul.search > li").count() > 0
        page.go_back()
        page.get_by_role("link", name="the guide's home page").click()
        page.wait_for_url(site_url + "index.html")
        assert page.locator("h1").first.inner_text().startswith("Preventing implicit")
    finally:
        page.close()
    assert not failed


# --- sitemap.xml ---------------------------------------------------------------------


def test_the_sitemap_lists_every_page_at_its_canonical_url(site_url: str) -> None:
    status, headers, body = fetch(site_url + "sitemap.xml")
    assert status == 200 and headers["content-type"].startswith("application/xml")
    listed = re.findall(r"<loc>([^<]+)</loc>", body.decode())
    assert {docs_base_url() + a for a in page_addresses()} <= set(listed)
    for url in listed:
        assert url.startswith(docs_base_url())
        local = site_url + url.removeprefix(docs_base_url())
        status, _, page = fetch(local)
        assert status == 200, local
        assert f'<link rel="canonical" href="{url}"'.encode() in page


# --- Cache headers and compression ----------------------------------------------------


def _max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found.group(1)) if found else 0


def test_fingerprinted_assets_are_kept_and_pages_revalidated(site_url: str) -> None:
    status, headers, body = fetch(site_url + "guides/eager-loading.html")
    assert status == 200
    assert headers["cache-control"] == "no-cache" and "etag" in headers
    again, _, _ = fetch(
        site_url + "guides/eager-loading.html", **{"If-None-Match": headers["etag"]}
    )
    assert again == 304
    assets = re.findall(r'(?:href|src)="([^"]+\?v=[0-9a-f]+)"', body.decode())
    assert len(assets) >= 5, assets
    for asset in assets:
        url = site_url + "guides/" + asset
        status, headers, _ = fetch(url)
        assert status == 200, url
        assert "immutable" in headers["cache-control"], (url, headers)
        assert _max_age(headers["cache-control"]) >= YEAR
    for unfingerprinted in ("searchindex.js", "rules.json", "_static/favicon.svg"):
        status, headers, _ = fetch(site_url + unfingerprinted)
        assert status == 200 and headers["cache-control"] == "no-cache", unfingerprinted


@pytest.mark.parametrize(
    "address",
    [
        "index.html",
        "_static/guide.css",
        "searchindex.js",
        "rules.json",
        "sitemap.xml",
        "_images/concepts-bridge.svg",
        "_static/scripts/furo.js",
    ],
)
def test_text_is_sent_compressed(site_url: str, address: str) -> None:
    status, headers, _ = fetch(site_url + address, **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip", headers
    assert "Accept-Encoding" in headers.get("vary", "")


# --- Moved pages ---------------------------------------------------------------

#: A page renamed after it was published (as deploy/moved-pages.toml declares one).
RENAMED = {
    "guides/eager-loading-strategies.html": "guides/eager-loading.html#which-one-to-use"
}


@pytest.fixture(scope="module")
def with_a_renamed_page(site_dir: Path, base_path: str):
    """The artifact served with the shipped config and one more moved page."""
    with nginx.serving(site_dir, base_path, {**moved_pages(), **RENAMED}) as url:
        yield url


def test_a_renamed_pages_old_address_redirects(
    browser: Browser, with_a_renamed_page: str, base_path: str
) -> None:
    ((old, new),) = RENAMED.items()
    status, headers, _ = fetch(with_a_renamed_page + old)
    assert status == 301
    assert headers["location"] == base_path + new
    page = browser.new_page()
    try:
        page.goto(with_a_renamed_page + old)
        assert page.url == with_a_renamed_page + new
        assert page.locator("#which-one-to-use").is_visible()
    finally:
        page.close()


def test_every_moved_page_redirects(site_url: str, base_path: str) -> None:
    for old, new in moved_pages().items():
        status, headers, _ = fetch(site_url + old)
        assert (status, headers.get("location")) == (301, base_path + new), old


def test_the_sub_path_without_its_slash_redirects(
    site_url: str, base_path: str
) -> None:
    status, headers, _ = fetch(site_url.rstrip("/"))
    assert (status, headers["location"]) == (301, base_path)


# --- The same artifact at a server's root ---------------------------------------


@pytest.fixture(scope="module")
def at_root(site_dir: Path):
    with nginx.serving(site_dir, "/") as url:
        yield url


@pytest.mark.parametrize(
    "address", ["index.html", "guides/rules/io101.html", "search.html?q=selectinload"]
)
def test_the_artifact_also_serves_from_the_root(
    browser: Browser, at_root: str, address: str
) -> None:
    """Pages, assets, search and copy buttons need no sub-path: they link relatively."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"),
    )
    page.on(
        "request",
        lambda r: r.url.startswith(at_root) or problems.append(f"outside: {r.url}"),
    )
    try:
        page.goto(at_root + address)
        assert (
            page.evaluate(
                "() => getComputedStyle(document.querySelector('.page')).display"
            )
            == "flex"
        )
        if address.startswith("search.html"):
            page.wait_for_function(SEARCH_DONE)
            first = page.locator("#search-results ul.search > li > a").first
            assert first.get_attribute("href").startswith("guides/eager-loading.html")
        else:
            assert (
                page.locator("button.copybtn").count()
                + page.locator("a.next-page").count()
                > 0
            )
            canonical = page.locator("link[rel=canonical]").get_attribute("href")
            assert canonical == docs_base_url() + address
    finally:
        page.close()
    assert not problems
    assert urlsplit(at_root).path == "/"
