"""Docutils nodes the extensions build alike (a helper module, not an extension):
inline code from backticks, cross-references, tables, and per-page data kept in the
environment."""

from __future__ import annotations

from docutils import nodes
from sphinx import addnodes


def inline_code(text: str) -> list[nodes.Node]:
    """``text`` with its `backticked` parts as inline code (balanced backticks)."""
    parts = text.split("`")
    return [
        nodes.literal(part, part) if index % 2 else nodes.Text(part)
        for index, part in enumerate(parts)
        if part
    ]


def xref(reftype: str, target: str, docname: str, *shown: nodes.Node, **options):
    """A reference Sphinx resolves (``doc``, ``ref`` or ``term``) from ``docname``."""
    attributes = {"refexplicit": True, "refdomain": "std"} | options
    ref = addnodes.pending_xref(
        "", reftype=reftype, reftarget=target, refdoc=docname, **attributes
    )
    ref += shown
    return ref


def table(rows: list[list[list[nodes.Node]]], kind: str, caption: str | None = None):
    """A table of inline cells, the first row its header, of class ``kind``."""
    header, *body = rows
    result = nodes.table(classes=[kind])
    if caption is not None:
        result += nodes.title(text=caption)
    group = nodes.tgroup(cols=len(header))
    result += group
    group += [nodes.colspec(colwidth=1) for _ in header]

    def row(cells: list[list[nodes.Node]]) -> nodes.row:
        return nodes.row(
            "", *(nodes.entry("", nodes.paragraph("", "", *c)) for c in cells)
        )

    group += nodes.thead("", row(header))
    group += nodes.tbody("", *(row(cells) for cells in body))
    return result


def text_table(rows: list[list[str]], kind: str, caption: str | None = None):
    """A table of plain-text cells, the first row its header."""
    return table([[[nodes.Text(cell)] for cell in row] for row in rows], kind, caption)


def under_title(section: nodes.section, shown: list[nodes.Node]) -> None:
    """Insert ``shown`` into ``section`` right under its title."""
    title = section.next_node(nodes.title)
    position = section.index(title) + 1 if title is not None else 0
    section[position:position] = shown


def per_page(app, key: str) -> None:
    """Keep ``env.<key>``, a dict by docname, right when pages are removed or read
    in parallel (Sphinx's purge and merge events)."""

    def purge(app, env, docname: str) -> None:
        getattr(env, key, {}).pop(docname, None)

    def merge(app, env, docnames, other) -> None:
        theirs = getattr(other, key, {})
        store(env, key).update({d: theirs[d] for d in docnames if d in theirs})

    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)


def store(env, key: str) -> dict:
    """``env.<key>``, made empty the first time."""
    if not hasattr(env, key):
        setattr(env, key, {})
    return getattr(env, key)
