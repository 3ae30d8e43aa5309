"""A keyboard user reaches the content quickly and always sees where the focus is."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

#: Tab stops allowed before the first link inside the article, at each width.
MAX_STOPS_BEFORE_CONTENT = 12


@pytest.mark.parametrize("width", [1280, 390])
def test_content_comes_within_a_few_tab_stops(
    browser: Browser, site_url: str, width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 844})
    try:
        page.goto(site_url + "guides/eager-loading.html")
        page.keyboard.press("Tab")
        first = page.evaluate("() => document.activeElement.textContent.trim()")
        assert first == "Skip to content"
        for _ in range(MAX_STOPS_BEFORE_CONTENT):
            page.keyboard.press("Tab")
            if page.evaluate("() => !!document.activeElement.closest('article')"):
                break
        else:
            pytest.fail(f"no article link within {MAX_STOPS_BEFORE_CONTENT} tab stops")
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_search_box_shows_its_focus(
    browser: Browser, site_url: str, scheme: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.emulate_media(color_scheme=scheme)
        page.goto(site_url + "index.html")
        page.locator("input.sidebar-search").focus()
        page.keyboard.press("a")  # typing: :focus-visible applies
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
        )
        assert outline[0] != "none" and outline[1] >= 2, outline
    finally:
        page.close()
