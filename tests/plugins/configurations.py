"""The ``only_on`` marker: a fact that holds only on some configurations.

    @pytest.mark.only_on(engine="postgresql", reason="SQLite has no ...")
    @pytest.mark.only_on(sqlalchemy="2.0", reason="2.1 wraps the error ...")

Elsewhere the test is skipped with that reason; a value no suite runs, or a marker
without a reason, stops the run (guide_runtime/configurations.py lists them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from guide_runtime.configurations import (
    ENGINES,
    SQLALCHEMY_LINES,
    Configuration,
    current,
)

ONLY_ON_HELP = (
    "write @pytest.mark.only_on(engine=..., sqlalchemy=..., reason='why the fact "
    f"holds only there'), with engine in {sorted(ENGINES)} and sqlalchemy in "
    f"{list(SQLALCHEMY_LINES)} (a string or a tuple of them)"
)


def _values(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def only_on_problem(kwargs: Mapping[str, Any], args: tuple[Any, ...]) -> str | None:
    """What is wrong with one ``only_on`` marker's arguments, or None."""
    if args:
        return "takes keywords only"
    unknown = set(kwargs) - {"engine", "sqlalchemy", "reason"}
    if unknown:
        return f"has unknown keyword(s) {sorted(unknown)}"
    if not isinstance(kwargs.get("reason"), str) or not kwargs["reason"].strip():
        return "needs reason='...' saying why the fact holds only there"
    if "engine" not in kwargs and "sqlalchemy" not in kwargs:
        return "names no engine and no sqlalchemy line"
    for name, known in (("engine", tuple(ENGINES)), ("sqlalchemy", SQLALCHEMY_LINES)):
        if name in kwargs:
            odd = [v for v in _values(kwargs[name]) if v not in known]
            if odd:
                return f"names {name} {odd}, which no suite runs (known: {list(known)})"
    return None


def describe_only_on(kwargs: Mapping[str, Any]) -> str:
    """Where a valid ``only_on`` marker admits a test, as a reader would say it."""
    parts = []
    if "engine" in kwargs:
        parts.append(" or ".join(ENGINES[e] for e in _values(kwargs["engine"])))
    if "sqlalchemy" in kwargs:
        parts.append("SQLAlchemy " + " or ".join(_values(kwargs["sqlalchemy"])))
    return ", ".join(parts)


def runs_on(kwargs: Mapping[str, Any], configuration: Configuration) -> bool:
    """Whether a valid ``only_on`` marker admits this configuration."""
    engines = _values(kwargs.get("engine", tuple(ENGINES)))
    lines = _values(kwargs.get("sqlalchemy", SQLALCHEMY_LINES))
    return configuration.engine in engines and configuration.sqlalchemy in lines


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Skip tests whose ``only_on`` excludes this configuration; refuse bad markers."""
    here = current()
    for item in items:
        for marker in item.iter_markers("only_on"):
            problem = only_on_problem(marker.kwargs, marker.args)
            if problem:
                raise pytest.UsageError(
                    f"{item.nodeid}: its only_on marker {problem}; " + ONLY_ON_HELP
                )
            if not runs_on(marker.kwargs, here):
                where = describe_only_on(marker.kwargs)
                reason = f"only on {where}: {marker.kwargs['reason']}"
                item.add_marker(pytest.mark.skip(reason=reason))
