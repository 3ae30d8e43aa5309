"""``measured-table``: a table of timings from a file ``make bench`` wrote.

    ```{measured-table} measured/guard-overhead.json
    :caption: Time per statement, without and with the guard
    ```

Nothing measured with a clock runs during a build: the numbers would change with
every build and with the machine's load. ``make bench`` measures and writes the
file (the path is relative to the page), the file is committed, and the page shows
its rows with when, where and on which versions they were measured.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import ClassVar

import pydantic
from docutils import nodes
from docutils.parsers.rst import directives
from generated_table import text_table
from sphinx.util.docutils import SphinxDirective

REMEDY = "Run `make bench` and commit the file it writes."


class Machine(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    cpus: int
    cpu_model: str
    #: The one-minute load average when the measurement began: a busy machine
    #: stretches both columns, less so their ratio.
    load_average: float


class Measurement(pydantic.BaseModel):
    """The file's content: a header row first, then one row per measurement."""

    model_config = pydantic.ConfigDict(extra="forbid")
    measured: datetime.date
    machine: Machine
    python: str
    sqlite: str
    #: The distributions the numbers depend on, with their versions then.
    packages: dict[str, str]
    rows: list[list[str]] = pydantic.Field(min_length=2)

    @pydantic.field_validator("rows")
    @classmethod
    def _rectangular(cls, rows: list[list[str]]) -> list[list[str]]:
        if len({len(row) for row in rows}) != 1:
            raise ValueError("every row needs as many cells as the header")
        return rows

    def where(self) -> str:
        packages = ", ".join(f"{name} {v}" for name, v in self.packages.items())
        return (
            f"Measured by make bench on {self.measured.isoformat()}, on "
            f"{self.machine.cpus} CPUs ({self.machine.cpu_model}; load average "
            f"{self.machine.load_average:.1f}), with Python "
            f"{self.python}, SQLite {self.sqlite}, {packages}."
        )


def load_measurement(path: Path) -> Measurement:
    """The file, validated; ValueError naming the file and the fix."""
    try:
        return Measurement.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist. {REMEDY}") from None
    except pydantic.ValidationError as error:
        raise ValueError(f"{path} is not a measurement: {error}. {REMEDY}") from None


class MeasuredTable(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar = {"caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        relative, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(relative)
        try:
            measurement = load_measurement(Path(path))
        except ValueError as problem:
            raise self.error(f"measured-table: {problem}") from None
        caption = self.options.get("caption")
        table = text_table(measurement.rows, caption, "measured-table")
        note = nodes.paragraph(text=measurement.where(), classes=["measured-where"])
        return [table, note]


def setup(app):
    app.add_directive("measured-table", MeasuredTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
