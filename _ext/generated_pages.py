"""Pages generated outside every toctree cost little to rebuild.

The test-code pages (``_proofs/``, from proofs.py) and the whole-module pages
(``_snippets/``, from snippet_source.py) are ~65 pages that are not documents.
Rendering all of them with the theme was most of a one-page rebuild. Two measures:

- **One navigation tree.** The theme renders the site navigation for every page.
  On a page outside every toctree no entry is "current", so the tree is the same
  for every such page in a folder: the ``toctree`` template function is memoised
  per folder and per argument set, for one build. Documents keep the function
  Sphinx gave them.
- **Written only when changed.** A generator wrapped in :func:`only_changed` yields
  a page only when its output is missing or its key changed. The key covers the
  page's name, template and context, and the *chrome* around it: one empty page
  per folder and template is rendered (to a temporary file) every build, so any
  change to the navigation, theme, configuration or assets changes every key.
  Keys are kept next to Sphinx's environment (``generated-pages.json`` in the
  doctree folder) and saved only after a build that succeeded.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

Page = tuple[str, dict[str, Any], str]
KEYS_FILE = "generated-pages.json"
CHROME_PAGE = "_chrome"  # the empty page's name in each folder; never written


def _state(app) -> dict[str, Any]:
    """This build's keys (loaded once) and chrome digests."""
    state = app.builder.__dict__.get("_generated_pages")
    if state is None:
        path = Path(app.doctreedir, KEYS_FILE)
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        state = {"previous": previous, "keys": {}, "chrome": {}, "memo": {}}
        app.builder.__dict__["_generated_pages"] = state
    return state


def _chrome(app, folder: str, template: str) -> str:
    """Digest of an empty page rendered in ``folder`` with ``template``."""
    chromes = _state(app)["chrome"]
    if (folder, template) not in chromes:
        with tempfile.TemporaryDirectory() as scratch:
            rendered = Path(scratch, "page.html")
            app.builder.handle_page(
                posixpath.join(folder, CHROME_PAGE),
                {"title": "", "body": ""},
                template,
                outfilename=str(rendered),
            )
            chromes[folder, template] = hashlib.sha256(
                rendered.read_bytes()
            ).hexdigest()
    return chromes[folder, template]


def only_changed(
    generate: Callable[[Any], Iterable[Page]],
) -> Callable[[Any], Iterator[Page]]:
    """An ``html-collect-pages`` listener yielding only the pages that changed."""

    def listener(app) -> Iterator[Page]:
        state = _state(app)
        for pagename, context, template in generate(app):
            chrome = _chrome(app, posixpath.dirname(pagename), template)
            material = [chrome, pagename, template, context]
            encoded = json.dumps(material, sort_keys=True, default=str).encode()
            key = state["keys"][pagename] = hashlib.sha256(encoded).hexdigest()
            written = Path(app.builder.get_outfilename(pagename)).is_file()
            if not written or state["previous"].get(pagename) != key:
                yield pagename, context, template

    return listener


def _share_navigation(app, pagename: str, templatename, context, doctree) -> None:
    toctree: Callable[..., str] | None = context.get("toctree")
    if toctree is None or pagename in app.env.all_docs:
        return
    memo: dict[tuple, str] = _state(app)["memo"]
    folder = posixpath.dirname(pagename)

    def shared_toctree(**options: Any) -> str:
        key = (folder, tuple(sorted(options.items())))
        if key not in memo:
            memo[key] = toctree(**options)
        return memo[key]

    context["toctree"] = shared_toctree


def _save_keys(app, exception) -> None:
    state = app.builder.__dict__.get("_generated_pages")
    if exception is None and state is not None:
        path = Path(app.doctreedir, KEYS_FILE)
        path.write_text(json.dumps(state["keys"], indent=1, sort_keys=True))


def setup(app):
    # Before the theme's handler (default priority 500), which renders the tree.
    app.connect("html-page-context", _share_navigation, priority=100)
    app.connect("build-finished", _save_keys)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
