"""The search index stems each distinct word once (_ext/search.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sphinx.search import languages
from sphinx.search.en import SearchEnglish

from tests.site.small_sites import build_small_site, small_conf

PAGE = """\
# Loading strategies

Lazy loading loads lazily: every lazy load is a load the loop waits for.
Eager loading loads eagerly, and the loaded rows are loaded once.
"""


def _index(root: Path, *extensions: str) -> str:
    (root / "conf.py").parent.mkdir(parents=True)
    (root / "conf.py").write_text(small_conf("myst_parser", *extensions))
    (root / "index.md").write_text(PAGE)
    build = build_small_site(root, root / "out")
    assert build.returncode == 0, build.stderr
    index = (root / "out" / "searchindex.js").read_text()
    # The same index but for the extensions' environment versions, which it lists.
    return re.sub(r'"envversion":\{[^}]*\}', "", index)


def test_each_word_is_stemmed_once_and_the_index_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The extension registers its language for the whole process: restored after.
    monkeypatch.setitem(languages, "en", SearchEnglish)
    plain = _index(tmp_path / "plain")
    words: list[str] = []
    stem = SearchEnglish.stem

    def counted(self: SearchEnglish, word: str) -> str:
        words.append(word)
        return stem(self, word)

    monkeypatch.setattr(SearchEnglish, "stem", counted)
    stemmed_once = _index(tmp_path / "stemmed-once", "search")
    assert languages["en"].__name__ == "SearchEnglishStemmedOnce"
    assert stemmed_once == plain
    # The snowball stemmer ran once per distinct word, though words recur.
    assert words and len(words) == len(set(words))
    assert "loading" in words and "loads" in words
