"""Every rule page has the same sections, in the same order, checked on every build.

A rule page is ``# CODE · name`` followed by exactly these H2 sections (sub-headings
inside them are free)::

    What it requires · Why · Example · Use instead · How it is enforced ·
    Exceptions · References

A missing, renamed, extra or out-of-order section is reported with the file, the
line and the fix; the strict build turns the report into a failure.
"""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from sphinx.util import logging

from .rules import Rule, rule_of

SECTIONS = (
    "What it requires",
    "Why",
    "Example",
    "Use instead",
    "How it is enforced",
    "Exceptions",
    "References",
)

_PARSER = MarkdownIt("commonmark")


def _headings(text: str) -> list[tuple[int, str, int]]:
    """(level, text, line) of every heading, ignoring code blocks and front matter."""
    offset = 0
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            offset = text[: end + 5].count("\n")
            text = text[end + 5 :]
    tokens = _PARSER.parse(text)
    found = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            title = tokens[index + 1].content.strip()
            found.append((int(token.tag[1]), title, offset + token.map[0] + 1))
    return found


def check_page(
    path: Path, where: str, rule: Rule, text: str | None = None
) -> list[str]:
    """Problems with one rule page's headings, each 'file:line: what to fix'."""
    headings = _headings(path.read_text(encoding="utf-8") if text is None else text)
    title = f"{rule.code} · {rule.name}"
    top = [(text, line) for level, text, line in headings if level == 1]
    if [text for text, _ in top] != [title]:
        line = top[0][1] if top else 1
        return [f"{where}:{line}: the page must have one title, '# {title}'."]
    sections = [(text, line) for level, text, line in headings if level == 2]
    seen = [text for text, _ in sections]
    for position, expected in enumerate(SECTIONS):
        if position < len(sections) and sections[position][0] == expected:
            continue
        after = f"after '## {SECTIONS[position - 1]}'" if position else "first"
        line = sections[position][1] if position < len(sections) else top[0][1]
        if expected in seen:
            line = sections[seen.index(expected)][1]
            return [
                f"{where}:{line}: section '## {expected}' is out of order: move it "
                f"{after.replace('first', 'to the top')}. Rule pages use these H2 "
                f"sections in this order: {' · '.join(SECTIONS)}."
            ]
        if position < len(sections) and sections[position][0] not in SECTIONS:
            return [
                f"{where}:{line}: '## {sections[position][0]}' is not a rule-page "
                f"section. Rename it to '## {expected}', or make it an H3 inside one."
            ]
        return [
            f"{where}:{line}: section '## {expected}' is missing. Add it {after}; "
            f"rule pages use these H2 sections in this order: {' · '.join(SECTIONS)}."
        ]
    if len(sections) > len(SECTIONS):
        text, line = sections[len(SECTIONS)]
        return [
            f"{where}:{line}: '## {text}' comes after '## References'. Make it an H3 "
            "inside one of the sections, or delete it."
        ]
    return []


def _check_read_page(app, docname: str, source: list[str]) -> None:
    """Each rule page as Sphinx reads it: an edit checks the one page it changed."""
    rule = rule_of(app.env, docname)
    if rule is None:
        return
    path = Path(app.srcdir, f"{docname}.md")
    for problem in check_page(path, f"{docname}.md", rule, source[0]):
        logging.getLogger(__name__).warning(
            "rule page: %s", problem, type="rules", subtype="skeleton"
        )


def setup(app):
    app.setup_extension(f"{__package__}.rules")
    app.connect("source-read", _check_read_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
