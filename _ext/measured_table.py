"""``measured-table``: a table of timings from a file ``make bench`` wrote.

    ```{measured-table} measured/guard-overhead.json
    :caption: Time per statement, without and with the guard
    ```

A build never measures with a clock (the numbers would change with each build and
the machine's load): the committed file (relative to the page) holds the rows and
when, where and on which versions they were measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from .markup import text_table


class MeasuredTable(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar = {"caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        relative, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(relative)
        # The file's model needs pydantic: imported only when a page shows a table.
        from guide_runtime.measurement import load_measurement

        try:
            measurement = load_measurement(Path(path))
        except ValueError as problem:
            raise self.error(f"measured-table: {problem}") from None
        caption = self.options.get("caption")
        table = text_table(measurement.rows, "measured-table", caption)
        note = nodes.paragraph(text=measurement.where(), classes=["measured-where"])
        return [table, note]


def setup(app):
    app.add_directive("measured-table", MeasuredTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
