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


def _tab_to(page, predicate: str, limit: int = MAX_STOPS_BEFORE_CONTENT) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(predicate):
            return
    pytest.fail(f"not reached within {limit} tab stops: {predicate}")


FOCUSED_NAME = "() => document.activeElement.getAttribute('aria-label')"


@pytest.mark.parametrize(
    ("toggle", "drawer"),
    [
        ("Site navigation and search", ".sidebar-drawer"),
        ("Contents of this page", ".toc-drawer"),
    ],
)
def test_on_a_phone_the_keyboard_opens_and_closes_each_drawer(
    browser: Browser, site_url: str, toggle: str, drawer: str
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(site_url + "guides/eager-loading.html")
        button = page.get_by_role("button", name=toggle).first
        assert button.is_visible() and button.get_attribute("aria-expanded") == "false"
        _tab_to(
            page,
            f"() => document.activeElement.getAttribute('aria-label') === {toggle!r}",
        )
        page.keyboard.press("Enter")
        assert page.locator(drawer).is_visible()
        assert button.get_attribute("aria-expanded") == "true"
        inside = f"() => !!document.activeElement.closest({drawer!r})"
        assert page.evaluate(inside)  # the focus moved into the open drawer
        page.keyboard.press("Escape")
        assert not page.locator(drawer).is_visible()
        assert page.evaluate(FOCUSED_NAME) == toggle
    finally:
        page.close()


def test_on_a_phone_search_is_a_few_tab_stops_away(
    browser: Browser, site_url: str
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(site_url + "guides/eager-loading.html")
        box = page.get_by_role("searchbox", name="Search the guide")
        assert box.is_visible()
        _tab_to(page, "() => document.activeElement.name === 'q'")
        page.keyboard.type("selectinload")
        page.keyboard.press("Enter")
        page.wait_for_url("**/search.html?q=selectinload*")
        page.wait_for_function(
            "() => document.querySelector('#search-results .search-summary')?.innerText"
        )
        # The search page shows its own field, holding the query, on a phone too.
        field = page.get_by_role("searchbox", name="Search the guide")
        assert field.is_visible() and field.input_value() == "selectinload"
    finally:
        page.close()
