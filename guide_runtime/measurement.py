"""The file ``make bench`` writes (``guides/measured/*.json``), validated.

Read by the build (measured-table) and written by `make bench`.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pydantic

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
