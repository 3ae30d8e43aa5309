"""What a reader pastes into the search box finds the page that explains it, first.

Run in the browser against Sphinx's own search (``searchtools.js`` and the built
``searchindex.js``) with the site's forgiving query (``_static/search-scorer.js``),
as a reader meets it on the published artifact.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser

RULE_CODES = [
    "IO101", "IO102", "IO103", "IO104", "IO105", "IO106", "IO107",
    "IO201", "IO202", "IO203", "IO204", "IO301", "IO302", "IO401", "IO402",
]  # fmt: skip

#: query → the page that explains it.
SEARCHES = {
    # The exceptions and messages of the troubleshooting catalogue.
    "MissingGreenlet": "guides/troubleshooting",
    "StatementError": "guides/troubleshooting",
    "greenlet_spawn": "guides/troubleshooting",
    "greenlet_spawn has not been called": "guides/troubleshooting",
    "was never awaited": "guides/troubleshooting",
    "coroutine 'Connection.cursor' was never awaited": "guides/troubleshooting",
    "InvalidRequestError": "guides/troubleshooting",
    "DetachedInstanceError": "guides/troubleshooting",
    "is not bound to a Session": "guides/troubleshooting",
    "ChunkedIteratorResult": "guides/troubleshooting",
    "has no attribute 'query'": "guides/troubleshooting",
    "Could not locate column in row": "guides/troubleshooting",
    "asyncio module requires": "guides/troubleshooting",
    # The lazy= strategies, as written in a mapping (either quote).
    "lazy='raise'": "guides/troubleshooting",
    'lazy="raise"': "guides/troubleshooting",
    "lazy='selectin'": "guides/eager-loading",
    "lazy='joined'": "guides/eager-loading",
    "lazy='select'": "guides/eager-loading",
    "lazy='dynamic'": "guides/write-only-relationships",
    'lazy="write_only"': "guides/write-only-relationships",
    # Loader options and the other names pages are about.
    "selectinload": "guides/eager-loading",
    "joinedload": "guides/eager-loading",
    "raiseload": "guides/detecting-implicit-io",
    "load_only": "guides/deferred-columns",
    "undefer": "guides/deferred-columns",
    "awaitable_attrs": "guides/awaitable-attributes",
    "WriteOnlyMapped": "guides/write-only-relationships",
    "expire_on_commit": "guides/expiry-and-refresh",
    "run_sync": "guides/run-sync",
    "N+1": "guides/glossary",
    "identity map": "guides/glossary",
    **{code: f"guides/rules/{code.lower()}" for code in RULE_CODES},
}

TROUBLESHOOTING = "guides/troubleshooting"
#: Queries beside the names the search was tuned on → the page that explains them.
#: The explaining page ranks in the top 3; where the query names an error (the
#: FIRST ones), it ranks first.
FORGIVING = {
    # The CLI, the pytest plugin and its options.
    "implicit-io-check": "guides/review-check",
    "implicit_io": "guides/adopting-the-toolkit",
    "pytest plugin": "guides/adopting-the-toolkit",
    "--implicit-io": "guides/adopting-the-toolkit",
    # Option values without quotes, and with either.
    "lazy=raise": TROUBLESHOOTING,
    "lazy=selectin": "guides/eager-loading",
    'lazy="selectin"': "guides/eager-loading",
    "lazy=joined": "guides/eager-loading",
    "lazy=write_only": "guides/write-only-relationships",
    "lazy=dynamic": "guides/write-only-relationships",
    "expire_on_commit=False": "guides/expiry-and-refresh",
    "populate_existing": "guides/expiry-and-refresh",
    "populate_existing=True": "guides/expiry-and-refresh",
    # An error name and a driver, in either order.
    "MissingGreenlet asyncpg": TROUBLESHOOTING,
    "asyncpg MissingGreenlet": TROUBLESHOOTING,
    "MissingGreenlet aiosqlite": TROUBLESHOOTING,
    "StatementError asyncpg": TROUBLESHOOTING,
    # One letter off: missing, extra, wrong, swapped.
    "MisingGreenlet": TROUBLESHOOTING,
    "MissingGreenlt": TROUBLESHOOTING,
    "MissnigGreenlet": TROUBLESHOOTING,
    "StatmentError": TROUBLESHOOTING,
    "DetachedInstanceEror": TROUBLESHOOTING,
    "InvalidRequestEror": TROUBLESHOOTING,
    "greenlet_spwn": TROUBLESHOOTING,
    "selectinlod": "guides/eager-loading",
}
#: Queries that name an error: the explaining page ranks first.
FIRST = {query for query, page in FORGIVING.items() if page == TROUBLESHOOTING}


def ranked_pages(browser: Browser, site_url: str, query: str) -> list[str]:
    """The pages the search lists for ``query``, best first (one entry per page)."""
    page = browser.new_page()
    try:
        page.goto(f"{site_url}search.html?q={quote(query)}")
        page.wait_for_function(
            "() => document.querySelector('#search-results .search-summary')?.innerText"
        )
        hrefs = page.eval_on_selector_all(
            "#search-results ul.search > li > a",
            "links => links.map(a => a.getAttribute('href'))",
        )
    finally:
        page.close()
    ranked: list[str] = []
    for href in hrefs:
        docname = href.split("#")[0].removesuffix(".html")
        if docname not in ranked:
            ranked.append(docname)
    return ranked


@pytest.mark.parametrize("query", SEARCHES)
def test_the_explaining_page_ranks_first(
    browser: Browser, site_url: str, query: str
) -> None:
    ranked = ranked_pages(browser, site_url, query)
    expected = SEARCHES[query]
    assert ranked, f"{query!r} finds nothing"
    assert ranked[0] == expected, (
        f"{query!r}: {expected} ranks "
        f"{ranked.index(expected) + 1 if expected in ranked else 'nowhere'} "
        f"of {len(ranked)}; first: {ranked[:3]}"
    )


@pytest.mark.parametrize("query", FORGIVING)
def test_search_forgives_the_reader(
    browser: Browser, site_url: str, query: str
) -> None:
    ranked = ranked_pages(browser, site_url, query)
    expected = FORGIVING[query]
    best = ranked[:1] if query in FIRST else ranked[:3]
    assert expected in best, (
        f"{query!r}: {expected} ranks "
        f"{ranked.index(expected) + 1 if expected in ranked else 'nowhere'} "
        f"of {len(ranked)}; first: {ranked[:3]}"
    )


def test_excerpts_leave_out_proof_marks(browser: Browser, site_url: str) -> None:
    """A result's excerpt is the page's prose, not the configurations a claim was
    proven on."""
    page = browser.new_page()
    try:
        page.goto(f"{site_url}search.html?q={quote('subquery')}")
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results p.context').length"
        )
        excerpts = page.locator("#search-results p.context").all_inner_texts()
    finally:
        page.close()
    assert excerpts
    for excerpt in excerpts:
        assert not re.search(r"SQLite · 2\.\d|PostgreSQL · 2\.\d|proven on", excerpt), (
            excerpt
        )


@pytest.mark.parametrize(
    ("typed", "searched"),
    [("MisingGreenlet", "MissingGreenlet"), ("StatmentError", "StatementError")],
)
def test_a_corrected_word_is_shown_with_what_was_typed(
    browser: Browser, site_url: str, typed: str, searched: str
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{site_url}search.html?q={typed}")
        note = page.locator("#guide-search-corrected")
        note.wait_for()
        assert note.inner_text() == f"Searched for {searched} (you typed {typed})."
        page.goto(f"{site_url}search.html?q=MissingGreenlet")
        page.wait_for_function(
            "() => document.querySelector('#search-results .search-summary')?.innerText"
        )
        assert page.locator("#guide-search-corrected").count() == 0
    finally:
        page.close()
