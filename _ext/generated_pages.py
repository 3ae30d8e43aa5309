"""Pages generated outside every toctree (``_proofs/``, ``_snippets/``: ~50 pages)
cost little to rebuild.

- **One navigation tree.** On a page outside every toctree no navigation entry is
  "current" and its links are relative to its folder, so the theme's ``toctree`` is
  the same for every such page of a folder, or of any folder at the same depth that
  holds no document: it is memoised per such *place*, for one build.
- **Written only when changed.** A producer, connected through :func:`only_changed`,
  yields :class:`GeneratedPage` items (``page.html`` pages): a name, the *material*
  the page is made from, and a function making its context, called only for a page
  to write. A page is written when its output is missing or its key changed: the key
  covers the name, the material and the *chrome* around the page (one empty page at
  the site's root, rendered every build: the pages' chrome differs from it only by
  their links' ``../``), so any change to navigation, theme, configuration or assets
  changes every key. Keys are kept in the doctree folder
  (``generated-pages.json``), saved only after a build that succeeded.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pygments
import sphinx

Page = tuple[str, dict[str, Any], str]


@dataclass(frozen=True)
class GeneratedPage:
    pagename: str
    #: JSON data covering everything the context is made from (sources, versions,
    #: the producer's own code): equal material, equal page.
    material: Any
    context: Callable[[], dict[str, Any]]


def source_page(
    pagename: str,
    path: Path,
    title: str,
    sentence: str,
    highlighted: Callable[[str], str],
    by: str,
    **context: Any,
) -> GeneratedPage:
    """A page showing the file at ``path``, highlighted; ``by`` is the producer's own
    source (its page changes when the producer does)."""
    source = path.read_text(encoding="utf-8")
    versions = {"pygments": pygments.__version__, "sphinx": sphinx.__version__}
    material = {"title": title, "sentence": sentence, "source": source, "by": by}

    def make_context() -> dict[str, Any]:
        body = f"<h1>{escape(title)}</h1>\n<p>{sentence}</p>\n{highlighted(source)}"
        return {"title": title, "body": body, **context}

    return GeneratedPage(pagename, material | versions, make_context)


KEYS_FILE = "generated-pages.json"
TEMPLATE = "page.html"
CHROME_PAGE = "_chrome"  # the empty page's name, at the root; never written


def _state(app) -> dict[str, Any]:
    """This build's keys (the previous build's loaded once) and chrome digest."""
    if "_generated_pages" not in app.builder.__dict__:
        try:
            previous = json.loads(Path(app.doctreedir, KEYS_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            previous = {}
        state = {"previous": previous, "keys": {}, "chrome": None, "memo": {}}
        app.builder.__dict__["_generated_pages"] = state
    return app.builder.__dict__["_generated_pages"]


def _place(app, pagename: str) -> tuple[str, object]:
    """What the navigation on a generated page depends on: its folder's depth when
    the folder holds no document (then links from any such folder read the same),
    else the folder."""
    folder = posixpath.dirname(pagename)
    inside = folder + "/"
    if any(doc.startswith(inside) for doc in app.env.all_docs):
        return ("folder", folder)
    return ("depth", pagename.count("/"))


def _chrome(app) -> str:
    """Digest of an empty page rendered at the root (its navigation is the one the
    root's other pages outside every toctree share: search, index)."""
    state = _state(app)
    if state["chrome"] is None:
        with tempfile.TemporaryDirectory() as scratch:
            rendered = Path(scratch, "page.html")
            app.builder.handle_page(
                CHROME_PAGE,
                {"title": "", "body": ""},
                TEMPLATE,
                outfilename=str(rendered),
            )
            state["chrome"] = hashlib.sha256(rendered.read_bytes()).hexdigest()
    return state["chrome"]


def only_changed(
    generate: Callable[[Any], Iterable[GeneratedPage]],
) -> Callable[[Any], Iterator[Page]]:
    """An ``html-collect-pages`` listener yielding only the pages that changed."""

    def listener(app) -> Iterator[Page]:
        state = _state(app)
        for page in generate(app):
            material = [_chrome(app), page.pagename, page.material]
            encoded = json.dumps(material, sort_keys=True).encode()
            key = state["keys"][page.pagename] = hashlib.sha256(encoded).hexdigest()
            written = Path(app.builder.get_outfilename(page.pagename)).is_file()
            if not written or state["previous"].get(page.pagename) != key:
                yield page.pagename, page.context(), TEMPLATE

    return listener


def _share_navigation(app, pagename: str, templatename, context, doctree) -> None:
    toctree: Callable[..., str] | None = context.get("toctree")
    if toctree is None or pagename in app.env.all_docs:
        return
    memo: dict[tuple, str] = _state(app)["memo"]
    place = _place(app, pagename)

    def shared_toctree(**options: Any) -> str:
        key = (place, tuple(sorted(options.items())))
        if key not in memo:
            memo[key] = toctree(**options)
        return memo[key]

    context["toctree"] = shared_toctree


def _save_keys(app, exception) -> None:
    """Keep this build's keys; remove the pages in the generated pages' folders that
    no producer yields any more (a deleted test module's page)."""
    state = app.builder.__dict__.get("_generated_pages")
    if exception is None and state is not None:
        kept = {Path(app.builder.get_outfilename(name)) for name in state["keys"]}
        for folder in {path.parent for path in kept}:
            for page in set(folder.glob("*.html")) - kept:
                page.unlink()
        path = Path(app.doctreedir, KEYS_FILE)
        path.write_text(json.dumps(state["keys"], indent=1, sort_keys=True))


def setup(app):
    # Before the theme's handler (default priority 500), which renders the tree.
    app.connect("html-page-context", _share_navigation, priority=100)
    app.connect("build-finished", _save_keys)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
