"""Each glossary term links to its definition where a page first uses it.

The terms are read from ``guides/glossary.md`` (the unindented lines of its
``{glossary}`` block). On every other page, the first plain-text use of each term
(not in code, a title, an existing link or generated text) becomes a ``{term}`` reference, so no
page has to mark its terms by hand and a new term is linked everywhere at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

from .markup import xref

GLOSSARY = "guides/glossary"
#: Where a term is not linked: code, titles, links, and other generated text.
SKIP = (
    nodes.literal,
    nodes.FixedTextElement,
    nodes.title,
    nodes.subtitle,
    nodes.reference,
    nodes.inline,  # generated decorations (badges, labels)
    nodes.raw,
    nodes.caption,
    nodes.term,
    nodes.rubric,
    nodes.field_name,
    addnodes.pending_xref,
    addnodes.index,
)


def glossary_terms(srcdir: Path) -> list[str]:
    path = srcdir / f"{GLOSSARY}.md"
    if not path.is_file():
        return []
    block = re.search(r"```\{glossary\}\n(.*?)\n```", path.read_text(), re.S)
    if block is None:
        return []
    return [line.strip() for line in block[1].splitlines() if line[:1].strip()]


def term_pattern(term: str) -> re.Pattern[str]:
    """A whole-word use of ``term``; lower-case words also match capitalised or plural."""
    body = re.escape(term)
    plain = term.islower() and re.fullmatch(r"[a-z ]+", term)
    if plain:
        body += "s?"
    flags = re.IGNORECASE if plain else 0
    return re.compile(rf"(?<![\w/+-]){body}(?![\w/+-])", flags)


def _skipped(node: nodes.Node) -> bool:
    """True in code, titles and links, and in text an extension generated (its
    paragraphs carry a class: a measurement note, a rule's badges)."""
    paragraph, parent = None, node.parent
    while parent is not None:
        if isinstance(parent, SKIP):
            return True
        if paragraph is None and isinstance(parent, nodes.paragraph):
            paragraph = parent
        parent = parent.parent
    return paragraph is None or bool(paragraph["classes"])


def _link_first_uses(app, doctree: nodes.document) -> None:
    docname = app.env.docname
    patterns = getattr(app, "guide_glossary_patterns", [])
    if docname == GLOSSARY or not patterns:
        return
    pending = list(patterns)
    any_term = app.guide_glossary_any_term
    for found in list(doctree.findall(nodes.Text)):
        if any_term.search(found) is None:
            continue  # most text holds no term: one search instead of one per term
        text: nodes.Text | None = found
        while text is not None and text.parent is not None and pending:
            if _skipped(text):
                break
            value = text.astext()
            matches = [(m, (t, p)) for t, p in pending if (m := p.search(value))]
            if not matches:
                break
            match, (term, pattern) = min(matches, key=lambda m: m[0].start())
            pending.remove((term, pattern))
            text = _wrap(text, match, term, docname)  # then look in the rest
    if len(pending) < len(patterns):
        app.env.note_dependency(str(Path(app.srcdir, f"{GLOSSARY}.md")))


def _wrap(
    text: nodes.Text, match: re.Match[str], term: str, docname: str
) -> nodes.Text | None:
    """Replace the match in ``text`` by a term reference; return the text after it."""
    value = text.astext()
    shown = nodes.inline(match[0], match[0], classes=["xref", "std", "std-term"])
    ref = xref("term", term.lower(), docname, shown)
    parent = text.parent
    index = parent.index(text)
    parent.remove(text)
    rest = nodes.Text(value[match.end() :]) if value[match.end() :] else None
    parts = [nodes.Text(value[: match.start()]), ref, rest]
    for offset, part in enumerate(p for p in parts if p is not None and p.astext()):
        parent.insert(index + offset, part)
    return rest


def _load_terms(app) -> None:
    terms = sorted(glossary_terms(Path(app.srcdir)), key=len, reverse=True)
    app.guide_glossary_patterns = [(term, term_pattern(term)) for term in terms]
    # Matches where any of them would (each keeps its own case rule).
    app.guide_glossary_any_term = re.compile(
        "|".join(
            f"(?i:{p.pattern})" if p.flags & re.IGNORECASE else f"(?:{p.pattern})"
            for _, p in app.guide_glossary_patterns
        )
        or "(?!)"
    )


def setup(app):
    app.connect("builder-inited", _load_terms)
    app.connect("doctree-read", _link_first_uses)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
