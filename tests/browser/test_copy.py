"""The two copy buttons, clicked in the browser, put the right text on the clipboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext

from implicit_io.rule_links import docs_base_url


@pytest.fixture
def context(browser: Browser, site_url: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        permissions=["clipboard-read", "clipboard-write"],
        viewport={"width": 390, "height": 844},
        has_touch=True,
    )
    try:
        yield context
    finally:
        context.close()


def clipboard(context: BrowserContext, page) -> str:
    return page.evaluate("() => navigator.clipboard.readText()")


def test_review_link_is_canonical_from_any_host(
    context: BrowserContext, site_url: str
) -> None:
    assert not site_url.startswith(docs_base_url())  # a local preview, not the site
    page = context.new_page()
    page.goto(site_url + "guides/rules/io102.html")
    page.get_by_role("button", name="Copy review link").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert clipboard(context, page) == (
        "[IO102 no-implicit-loads-in-request-paths]"
        f"({docs_base_url()}guides/rules/io102.html)"
    )


def test_code_copy_button_copies_the_code_shown(
    context: BrowserContext, site_url: str
) -> None:
    page = context.new_page()
    page.goto(site_url + "guides/eager-loading.html")
    block = page.locator("div.highlight-python").first
    button = block.locator("button.copybtn")
    # Visible on a touch screen without hovering, and big enough to hit.
    assert button.evaluate("b => getComputedStyle(b).opacity") == "1"
    box = button.bounding_box()
    assert box and box["width"] >= 24 and box["height"] >= 24, box
    button.tap()
    shown = block.locator("pre").inner_text()
    assert clipboard(context, page).strip() == shown.strip()
