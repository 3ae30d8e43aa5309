"""The claims inventory: every sentence on the pages that cites a test, in one file.

    python tools/claims.py            # rewrite proofs/claims.toml from the pages
    python tools/claims.py --check    # exit 1 if it is out of date

Each ``[[claim]]`` of ``proofs/claims.toml`` is one sentence that cites at least one
test with ``{proof}``. The generator writes what it reads from the pages:

- ``page``, ``line`` (where the sentence starts), ``sentence`` (its text, without
  the citations), ``tests`` (``test_module::test_name``, in the order cited);
- ``quantifiers``: the words that make the sentence speak for a range of cases
  ("always", "every", "both", "whatever", "on 2.0 and 2.1", "four things", ...).

A person adds, by hand, for a quantified sentence:

- ``range``: what the sentence quantifies over, as the cited tests must cover it,
  for example ``range = { pool = ["default", "null", "fresh", "busy"] }``. The
  dimensions ``engine`` (``sqlite``, ``postgresql``) and ``sqlalchemy`` (``2.0``,
  ``2.1``) are configurations: the tests must run there (``only_on``). Any other
  dimension is a parametrize id of the form ``name=value`` (``pool=null``): some
  cited test must have a case with each value, not marked ``xfail``, on every
  configuration the range names;
- ``scope``: why the cited test covers the quantifier without a declared range
  (the quantifier ranges over rows or attributes the test itself checks, say).

Regenerating keeps those hand-written fields: a claim is matched by page and
sentence, or else by page and cited tests. ``tests/site/test_claims.py`` fails when
the file is out of date, when a cited test does not exist, when a quantified claim
has neither a range nor a scope, and when a range is wider than its tests.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = Path("proofs") / "claims.toml"
#: Fields a person writes; the generator carries them over and never invents them.
HAND_FIELDS = ("range", "scope")
#: Configuration dimensions of a range, and the values some suite runs.
CONFIGURATION_DIMENSIONS = {
    "engine": ("sqlite", "postgresql"),
    "sqlalchemy": ("2.0", "2.1"),
}

PROOF_ROLE = re.compile(r"\{proof\}`([^`]+)`")
CODE_SPAN = re.compile(r"`[^`]*`")
ROLE = re.compile(r"\{[\w-]+\}`[^`]*`")
#: Words and phrases by which a sentence speaks for a range of cases.
QUANTIFIERS = re.compile(
    r"\b(always|never|every\w*|any(?:thing|one|where)?|all|both|whatever|whichever"
    r"|each|either|none|no matter"
    r"|(?:two|three|four|five|six|seven|eight|nine|ten) (?:things|ways|cases|kinds"
    r"|shapes|causes|operations))\b"
    r"|2\.0 (?:and|or) 2\.1|2\.1 (?:and|or) 2\.0",
    re.IGNORECASE,
)
#: Abbreviations whose period does not end a sentence.
ABBREVIATIONS = ("e.g", "i.e", "vs", "cf", "etc")


@dataclass(frozen=True)
class Claim:
    """One sentence of a page and the tests it cites (the generated fields)."""

    page: str
    line: int
    sentence: str
    tests: tuple[str, ...]
    quantifiers: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "line": self.line,
            "sentence": self.sentence,
            "tests": list(self.tests),
            "quantifiers": list(self.quantifiers),
        }


def pages(root: Path = ROOT) -> list[Path]:
    """The site's pages: index.md and every page under guides/."""
    return [root / "index.md", *sorted((root / "guides").rglob("*.md"))]


# --- Reading a page ---------------------------------------------------------------


@dataclass
class _Block:
    """Consecutive prose lines: a paragraph, list item or table row."""

    lines: list[tuple[int, str]]

    @property
    def text(self) -> str:
        return " ".join(text for _, text in self.lines)

    def line_at(self, offset: int) -> int:
        """The page line holding the character at ``offset`` of ``text``."""
        position = 0
        for number, text in self.lines:
            position += len(text) + 1
            if offset < position:
                return number
        return self.lines[-1][0]


_NEW_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_NOT_PROSE = re.compile(r"^\s*(?:#|\(.*\)=\s*$|<!--|:[\w-]+:)")


def _blocks(source: str) -> Iterator[_Block]:
    """The prose of a MyST page: no front matter, code fences or directive heads."""
    lines = source.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":
        ends = [i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"]
        start = ends[0] + 1 if ends else 0
    fence: str | None = None
    current: list[tuple[int, str]] = []
    for index in range(start, len(lines)):
        number, line = index + 1, lines[index]
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and stripped.strip("`") == "":
                fence = None
            continue
        opened = re.match(r"^(`{3,})", stripped)
        separator = (
            not stripped
            or opened is not None
            or stripped.startswith(":::")
            or stripped.startswith("|")
            or _NOT_PROSE.match(line) is not None
            or _NEW_ITEM.match(line) is not None
        )
        if separator and current:
            yield _Block(current)
            current = []
        if opened:
            fence = opened.group(1)
        elif stripped.startswith("|"):
            yield _Block([(number, stripped)])  # a table row stands alone
        elif _NEW_ITEM.match(line):
            current = [(number, _NEW_ITEM.sub("", line, count=1).strip())]
        elif not separator:
            current.append((number, stripped))
        elif stripped.startswith("#"):
            yield _Block([(number, stripped.lstrip("#").strip())])
    if current:
        yield _Block(current)


def _sentence_bounds(text: str) -> list[int]:
    """Offsets where sentences of ``text`` start (code spans never split one)."""
    masked = CODE_SPAN.sub(
        lambda found: "`" + "x" * (len(found.group()) - 2) + "`", text
    )
    starts = [0]
    for found in re.finditer(r"[.!?](?=\s+[A-Z`({*\[\"0-9])", masked):
        before = masked[: found.start()].rsplit(None, 1)[-1].lower()
        if before.lstrip("(") in ABBREVIATIONS:
            continue
        starts.append(found.end() + 1)
    return starts


def clean(sentence: str) -> str:
    """A sentence as the inventory shows it: citations in parentheses taken out,
    a citation that is part of the sentence written as ``[test_module::test]``."""
    cited = [found.group(1).strip() for found in PROOF_ROLE.finditer(sentence)]
    numbers = iter(range(len(cited)))
    text = PROOF_ROLE.sub(lambda _: f"\0{next(numbers)}\0", sentence)
    mark = r"\x00\d+\x00"
    text = re.sub(rf"\s*\(\s*{mark}(?:\s*(?:,|;|and)\s*{mark})*\s*\)", "", text)
    text = re.sub(rf"\(\s*{mark}\s*;\s*", "(", text)  # (cite; see ...)
    text = re.sub(rf";\s*{mark}\s*\)", ")", text)  # (see ...; cite)
    text = re.sub(mark, lambda found: f"[{cited[int(found.group()[1:-1])]}]", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def quantifiers(sentence: str) -> tuple[str, ...]:
    """The quantifying words of a sentence, outside code and roles, in order."""
    prose = CODE_SPAN.sub(" ", ROLE.sub(" ", sentence))
    prose = re.sub(r"\]\([^)]*\)", "]", prose)  # a link's text, not its target
    found: list[str] = []
    for match in QUANTIFIERS.finditer(prose):
        word = match.group().lower()
        if word not in found:
            found.append(word)
    return tuple(found)


def claims_in(source: str, page: str) -> list[Claim]:
    """Every sentence of one page that cites a test."""
    found: list[Claim] = []
    for block in _blocks(source):
        text = block.text
        if "{proof}" not in text:
            continue
        starts = _sentence_bounds(text)
        ends = [*starts[1:], len(text) + 1]
        for start, end in zip(starts, ends, strict=True):
            sentence = text[start:end].strip()
            tests = tuple(t.strip() for t in PROOF_ROLE.findall(sentence))
            if tests:
                found.append(
                    Claim(
                        page=page,
                        line=block.line_at(start),
                        sentence=clean(sentence),
                        tests=tests,
                        quantifiers=quantifiers(sentence),
                    )
                )
    return found


def find_claims(root: Path = ROOT) -> list[Claim]:
    """The generated part of the inventory: every citing sentence of every page."""
    found: list[Claim] = []
    for path in pages(root):
        found += claims_in(path.read_text(), path.relative_to(root).as_posix())
    return found


# --- The inventory file -----------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    """The inventory's entries (none when the file does not exist yet)."""
    return load_text(path.read_text()) if path.is_file() else []


def load_text(text: str) -> list[dict[str, Any]]:
    return tomllib.loads(text).get("claim", [])


def merge(
    generated: Iterable[Claim], existing: Iterable[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
    """The new inventory, with each old entry's hand fields carried over; and the
    old entries with hand fields that matched no sentence any more (dropped)."""
    annotated = [dict(entry) for entry in existing if _hand(entry)]
    by_sentence = {(e["page"], e["sentence"]): e for e in annotated}
    claims = list(generated)
    entries: list[dict[str, Any]] = []
    used: set[int] = set()
    for claim in claims:
        match = by_sentence.get((claim.page, claim.sentence))
        if match is None or id(match) in used:
            candidates = [
                e
                for e in annotated
                if id(e) not in used
                and e["page"] == claim.page
                and tuple(e["tests"]) == claim.tests
            ]
            same_tests = [
                c for c in claims if (c.page, c.tests) == (claim.page, claim.tests)
            ]
            match = (
                candidates[0] if len(candidates) == 1 and len(same_tests) == 1 else None
            )
        entry = claim.fields()
        if match is not None:
            used.add(id(match))
            entry.update(_hand(match))
        entries.append(entry)
    dropped = [e for e in annotated if id(e) not in used]
    return entries, dropped


def _hand(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {name: entry[name] for name in HAND_FIELDS if name in entry}


HEADER = """\
# The claims inventory: every sentence of the pages that cites a test.
# Generated by tools/claims.py (page, line, sentence, tests, quantifiers); `range`
# and `scope` are written by hand and kept when it regenerates. A quantified claim
# needs a range its tests cover, or a scope saying why none is needed; see the
# module's docstring, and tests/site/test_claims.py for the checks.
"""


def _value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{key} = {_value(item)}" for key, item in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {value!r} in the inventory")


def dump(entries: Iterable[Mapping[str, Any]]) -> str:
    out = [HEADER]
    for entry in entries:
        out.append("\n[[claim]]\n")
        for key in ("page", "line", "sentence", "tests", "quantifiers", *HAND_FIELDS):
            if key in entry:
                out.append(f"{key} = {_value(entry[key])}\n")
    return "".join(out)


def regenerate(root: Path = ROOT) -> tuple[str, list[Mapping[str, Any]]]:
    """The inventory's text as the pages stand, and the annotations it dropped."""
    entries, dropped = merge(find_claims(root), load(root / INVENTORY))
    return dump(entries), dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if out of date")
    options = parser.parse_args(argv)
    text, dropped = regenerate(ROOT)
    path = ROOT / INVENTORY
    for entry in dropped:
        print(
            f"{entry['page']}: dropped the range/scope of a sentence that is gone: "
            f"{entry['sentence'][:70]!r}",
            file=sys.stderr,
        )
    if options.check:
        current = path.read_text() if path.is_file() else ""
        if current != text:
            print(f"{INVENTORY} is out of date: run python tools/claims.py")
            return 1
        return 0
    path.write_text(text)
    print(f"{INVENTORY}: {text.count('[[claim]]')} claims")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
