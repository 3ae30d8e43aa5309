"""A keyboard user reaches the content quickly and always sees where the focus is."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

#: Tab stops allowed before the first link inside the article, at each width.
MAX_STOPS_BEFORE_CONTENT = 12


IN_ARTICLE = "() => !!document.activeElement.closest('article')"


@pytest.mark.parametrize("width", [1280, 390])
def test_the_first_tab_stop_skips_to_the_content(
    browser: Browser, site_url: str, width: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 844})
    try:
        page.goto(site_url + "guides/eager-loading.html")
        page.keyboard.press("Tab")
        first = page.evaluate("() => document.activeElement.textContent.trim()")
        assert first == "Skip to content"
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate(IN_ARTICLE)
    finally:
        page.close()


def test_on_a_phone_the_closed_menu_holds_no_tab_stops(
    browser: Browser, site_url: str
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(site_url + "guides/eager-loading.html")
        for _ in range(MAX_STOPS_BEFORE_CONTENT):
            page.keyboard.press("Tab")
            if page.evaluate(IN_ARTICLE):
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
