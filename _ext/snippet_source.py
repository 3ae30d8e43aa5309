"""Every example offers its whole tested module, imports included, one click away.

Each code block included from ``snippets/X.py`` gets a "whole module" link under it
to a generated page, ``_snippets/X.html``, that shows the module exactly as the test
suite runs it (a page only for a module some page links).
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util.osutil import relative_uri

from .generated_pages import only_changed, source_page
from .markup import per_page, store

OUT_DIR = "_snippets"
LINKED = "snippet_modules_linked"  # env: docname -> the modules its blocks link


def _module_of(block: nodes.literal_block, srcdir: Path) -> str | None:
    """The snippet module a code block was included from, if any."""
    path = Path(block.get("source") or "")
    return (
        path.stem
        if path.suffix == ".py" and path.parent == srcdir / "snippets"
        else None
    )


def _in_tabs(node: nodes.Node) -> bool:
    """sphinx-design's tab items accept no extra children (their tab set links it)."""
    while node is not None:
        if any(c.startswith("sd-tab") for c in node.get("classes", [])):
            return True
        node = node.parent
    return False


def _link_modules(app, doctree: nodes.document) -> None:
    if app.builder.format != "html":
        return
    srcdir = Path(app.srcdir)
    here = app.builder.get_target_uri(app.env.docname)
    for block in list(doctree.findall(nodes.literal_block)):
        module = _module_of(block, srcdir)
        if module is None or _in_tabs(block):
            continue
        store(app.env, LINKED).setdefault(app.env.docname, set()).add(module)
        target = relative_uri(here, f"{OUT_DIR}/{module}.html")
        link = nodes.paragraph(classes=["snippet-source"])
        link += nodes.reference(
            "", f"Whole module: snippets/{module}.py", refuri=target, internal=True
        )
        # Under the block, or under the captioned container that holds it.
        anchor = block.parent if isinstance(block.parent, nodes.container) else block
        anchor.parent.insert(anchor.parent.index(anchor) + 1, link)


#: This module's own text: what it writes depends on how it writes it.
_SOURCE = Path(__file__).read_text(encoding="utf-8")


def _module_pages(app):
    """A page per snippet module some page links (``html-collect-pages``)."""
    linked = set().union(*store(app.env, LINKED).values())

    def highlighted(source: str) -> str:
        return app.builder.highlighter.highlight_block(source, "python", linenos=False)

    for path in sorted((Path(app.srcdir) / "snippets").glob("*.py")):
        if path.stem in linked:
            title = f"snippets/{path.name}"
            sentence = "The whole module, as the test suite runs it."
            page = f"{OUT_DIR}/{path.stem}"
            yield source_page(
                page, path, title, sentence, highlighted, _SOURCE, parents=[]
            )


def setup(app):
    app.connect("doctree-read", _link_modules)
    per_page(app, LINKED)
    app.setup_extension(f"{__package__}.generated_pages")
    app.connect("html-collect-pages", only_changed(_module_pages))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
