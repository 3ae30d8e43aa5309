"""The search index: every page's index entries kept, each word stemmed once.

**Index entries survive incremental builds.** Sphinx issue 12599 (open upstream): a
build that re-reads only some pages (``make serve`` on each save) drops from
``searchindex.js`` the index entries of the pages it did not re-read, and they are
what ranks a page first for a pasted error message. Each page's entries are kept in
the environment and handed back to the indexer before it is written. The reach into
Sphinx's internals is ``_INDEXER_ENTRIES`` and ``_INDEXER_TITLES``, here only: if
Sphinx renames them the build fails saying so (``tests/site/test_search_index.py``
also says when upstream has fixed 12599).

**Each distinct word is stemmed once.** Sphinx stems every word of every page with a
pure-Python stemmer in the main process; some 15,000 words hold 3,200 distinct ones.
"""

from __future__ import annotations

from functools import cache

from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.search.en import SearchEnglish
from sphinx.util.index_entries import split_index_msg

from .markup import per_page, store

#: The private attributes of sphinx.search.IndexBuilder: docname → index entries,
#: and docname → title (the pages the index holds).
_INDEXER_ENTRIES = "_index_entries"
_INDEXER_TITLES = "_titles"
ENV_KEY = "guide_index_entries"

Entry = tuple[str, str, str]  # (entry text, target id, "main" or "")


def index_entries(doctree: nodes.document) -> list[Entry]:
    """The search index's view of a page's index entries (as Sphinx's feed() does)."""
    found: set[Entry] = set()
    for node in doctree.findall(addnodes.index):
        for entry_type, value, target_id, main, _key in node["entries"]:
            try:
                parts = split_index_msg(entry_type, value)
            except ValueError:
                continue
            found |= {(part, target_id or "", main) for part in parts}
    return sorted(found)


def _record(app, doctree: nodes.document) -> None:
    store(app.env, ENV_KEY)[app.env.docname] = index_entries(doctree)


def _restore(app):
    indexer = getattr(app.builder, "indexer", None)
    if indexer is None:  # not an HTML build, or search is off
        return []
    entries = getattr(indexer, _INDEXER_ENTRIES, None)
    titled = getattr(indexer, _INDEXER_TITLES, None)
    if not isinstance(entries, dict) or not isinstance(titled, dict):
        raise ExtensionError(
            f"_ext/search.py: sphinx.search.IndexBuilder has no dicts "
            f"{_INDEXER_ENTRIES!r} and {_INDEXER_TITLES!r} any more. If Sphinx issue "
            "12599 is fixed in this version, remove the index entries' half of this "
            "extension; otherwise adapt it."
        )
    stored = store(app.env, ENV_KEY)
    for docname, page_entries in stored.items():
        if docname in titled:  # only pages the index holds
            entries[docname] = page_entries
    return []  # html-collect-pages: no extra pages


class SearchEnglishStemmedOnce(SearchEnglish):
    """Sphinx's English search language, remembering the stem of each word."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.stem = cache(self.stem)  # type: ignore[method-assign]


def setup(app):
    # Late, so entries other extensions add while the page is read are included.
    app.connect("doctree-read", _record, priority=900)
    per_page(app, ENV_KEY)
    # Runs in the builder's finish step, before the search index is dumped.
    app.connect("html-collect-pages", _restore)
    app.add_search_language(SearchEnglishStemmedOnce)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
