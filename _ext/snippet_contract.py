"""The snippet contract (guide_runtime/contract.py), checked on every build.

The build scans each page as it reads it (in the process reading it) and keeps the
scan in its environment, with the scans of modules by their stamp: a one-page edit
scans one page. Every problem is a warning naming the file, the line and the fix;
the strict build fails on it.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util import logging

from guide_runtime.contract import Scans, check, scan_page

from .markup import per_page, store


def _scan_read_page(app, doctree: nodes.document) -> None:
    env = app.env
    page = Path(env.doc2path(env.docname))
    if page.suffix == ".md":
        store(env, "snippet_scans")[env.docname] = scan_page(Path(app.srcdir), page)


def _check_on_build(app, env) -> None:
    if not hasattr(env, "snippet_module_scans"):
        env.snippet_module_scans = Scans()
    pages = store(env, "snippet_scans")
    scans = [pages[name] for name in sorted(pages)]
    for problem in check(Path(app.srcdir), scans, env.snippet_module_scans):
        logging.getLogger(__name__).warning(
            "snippet contract: %s", problem, type="snippets", subtype="contract"
        )


def _trim_included_code(app, doctree) -> None:
    """A region ends where its code does: no trailing blank lines (PEP 8 puts two
    between a function and the ``# endregion`` marker), so no block ends in a gap."""
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if block.get("source") and text != text.rstrip("\n"):
            block.children = [nodes.Text(text.rstrip("\n"))]
            block.rawsource = block.children[0].astext()


def setup(app):
    app.connect("doctree-read", _scan_read_page)
    per_page(app, "snippet_scans")
    app.connect("env-updated", _check_on_build)
    app.connect("doctree-read", _trim_included_code)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
