"""Keyboard and screen-reader fixes to the theme's pages, in one place.

- Toctree captions (``<p class="caption" role="heading">``, from Sphinx and Furo) get
  the ``aria-level`` that ``role="heading"`` requires (axe-core: aria-required-attr),
  patched in the page context after Furo has built its tree.
- ``_static/scroll-focus.js`` makes a block that scrolls sideways a tab stop
  (axe-core: scrollable-region-focusable).

``tests/browser/test_pages.py`` runs axe-core on every page, so a theme upgrade that
changes this markup fails there, naming the rule.
"""

from __future__ import annotations

CAPTION = 'class="caption" role="heading"'
LEVELLED = 'class="caption" role="heading" aria-level="2"'
#: Page-context entries holding HTML with toctree captions (Furo's sidebar, the body).
PATCHED = ("body", "furo_navigation_tree", "toctree")


def _level_captions(app, pagename, templatename, context, doctree) -> None:
    for key in PATCHED:
        value = context.get(key)
        if isinstance(value, str) and CAPTION in value:
            context[key] = value.replace(CAPTION, LEVELLED)


def setup(app):
    # After Furo's own handler (default priority 500), which builds the sidebar.
    app.connect("html-page-context", _level_captions, priority=900)
    app.add_js_file("scroll-focus.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
