"""``generated-table``: a table whose rows a snippet function computes at build time.

    ```{generated-table} enforcement:_comparison_rows
    :caption: What each tool reports
    ```

The function (sync or async, no arguments) returns a list of rows of strings; the
first row is the header. Nothing in the table is typed into the page.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from executed_store import cached
from snippet_targets import check_targets, snippet_problems_fail_the_build
from sphinx.util.docutils import SphinxDirective


def _rows(target: str) -> list[list[str]]:
    # Imported on first run: a build that finds every result stored needs no SQLAlchemy.
    from guide_runtime.capture import collected_logs, load_callable

    func = load_callable(target)
    with collected_logs():  # what the measured code logs is not build output
        rows = func()
        if inspect.isawaitable(rows):
            rows = asyncio.run(rows)
    if not rows or len({len(row) for row in rows}) != 1:
        raise ValueError(
            "must return a list of rows (lists of cells), a header row first, "
            "all of the same length"
        )
    return [[str(cell) for cell in row] for row in rows]


class GeneratedTable(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar = {"caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        target = self.arguments[0]
        check_targets(self, target)
        with snippet_problems_fail_the_build(self, target):
            rows = cached(self, [target], {"target": target}, lambda: _rows(target))
        return [text_table(rows, self.options.get("caption"), "generated-table")]


def text_table(rows: list[list[str]], caption: str | None, kind: str) -> nodes.table:
    """A table of plain-text cells, the first row its header."""
    header, *body = rows
    table = nodes.table(classes=[kind])
    if caption is not None:
        table += nodes.title(text=caption)
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in header]
    group += nodes.thead("", _row(header))
    group += nodes.tbody("", *(_row(row) for row in body))
    return table


def _row(cells: list[str]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        row += nodes.entry("", nodes.paragraph(text=cell))
    return row


def setup(app):
    app.setup_extension("executed_store")
    app.add_directive("generated-table", GeneratedTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
