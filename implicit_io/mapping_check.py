"""Mapping check: relationships state how they load (IO104), none is dynamic (IO105).

SQLAlchemy fills in ``lazy="select"`` when a ``relationship()`` names no strategy,
and keeps no record of whether the value was written or defaulted: after
construction ``relationship()`` and ``relationship(lazy="select")`` are the same
object. So the check reads the declaration itself, from the mapped class's source,
for every relationship the configured mappers actually hold.
"""

from __future__ import annotations

import ast
import inspect
import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, orm
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapper,
    RelationshipProperty,
    configure_mappers,
)

from implicit_io.rule_links import rule_url

logger = logging.getLogger("implicit_io.mapping")


# region findings
@dataclass(frozen=True)
class MappingFinding:
    rule: str
    attribute: str  # "Entity.relationship"
    location: str  # "path.py:line" of the declaration
    message: str
    docs_url: str

    def __str__(self) -> str:
        where = f"{self.location}: {self.rule} {self.attribute}"
        return f"{where} {self.message} See {self.docs_url}"


class MappingCheckError(AssertionError):
    """Raised at configure time in strict mode, listing every finding."""


# endregion findings


# region check
def check_mappings(
    base: type[DeclarativeBase],
    *,
    docs_base_url: str | None = None,
    modules: tuple[str, ...] = ("",),
) -> list[MappingFinding]:
    """Configure ``base``'s mappers and report relationships that hide their loading.

    ``modules`` limits the check to classes defined in those packages (prefixes).
    """
    configure_mappers()
    findings = []
    mappers = [
        m for m in base.registry.mappers if m.class_.__module__.startswith(modules)
    ]
    for mapper in sorted(mappers, key=lambda m: m.class_.__name__):
        for prop in mapper.relationships:
            if prop.parent is mapper:  # inherited ones are checked on their class
                findings += _check(prop, docs_base_url)
    return findings


def _check(
    prop: RelationshipProperty, docs_base_url: str | None
) -> list[MappingFinding]:
    attribute = f"{prop.parent.class_.__name__}.{prop.key}"
    location, call = _declaration(prop)
    findings = []
    if prop.lazy == "dynamic":
        findings.append(("IO105", 'uses lazy="dynamic", which loads on every access.'))
    elif prop.lazy == "write_only":
        pass  # stated: lazy="write_only" or a WriteOnlyMapped[...] annotation
    elif call is None:
        findings.append(
            (
                "IO104",
                "is declared where the check cannot read it (a backref or an "
                "imperative mapping): declare it on its class with an explicit lazy=.",
            )
        )
    elif not _states_loading(call):
        findings.append(
            (
                "IO104",
                'declares no loading strategy: add lazy="raise_on_sql", '
                '"selectin" or another explicit value.',
            )
        )
    return [
        MappingFinding(
            rule, attribute, location, message, rule_url(rule, docs_base_url)
        )
        for rule, message in findings
    ]


def _states_loading(call: ast.Call) -> bool:
    # lazy=..., or **options we cannot see into (given the benefit of the doubt).
    return any(keyword.arg in ("lazy", None) for keyword in call.keywords)


def _declaration(prop: RelationshipProperty) -> tuple[str, ast.Call | None]:
    """Where ``prop`` is declared, and its ``relationship(...)`` call if found."""
    cls = prop.parent.class_
    try:
        lines, first_line = inspect.getsourcelines(cls)
        path = Path(inspect.getsourcefile(cls) or "<unknown>")
    except (OSError, TypeError):
        return f"<{cls.__module__}>", None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    for node in ast.walk(tree):
        target = getattr(node, "target", None) or next(
            iter(getattr(node, "targets", ())), None
        )
        value = getattr(node, "value", None)
        if (
            isinstance(target, ast.Name)
            and target.id == prop.key
            and isinstance(value, ast.Call)
            and _called_name(value) == "relationship"
        ):
            with_path = _relative(path)
            return f"{with_path}:{first_line + node.lineno - 1}", value
    return f"{_relative(path)}:{first_line}", None


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _relative(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


# endregion check


# region on_configure
def check_on_configure(base: type[DeclarativeBase], *, strict: bool = False) -> None:
    """Run the check each time ``base``'s mappers are configured: log, or raise."""

    # SQLAlchemy 2.1 lets one registry be listened to; on 2.0 ``after_configured``
    # is an event of the Mapper class only, fired when any registry is configured.
    target = base.registry if hasattr(orm, "RegistryEvents") else Mapper

    @event.listens_for(target, "after_configured")
    def _after_configured(*_: object) -> None:
        findings = check_mappings(base)
        if findings and strict:
            raise MappingCheckError("\n".join(map(str, findings)))
        for finding in findings:
            logger.warning("%s", finding, extra={"rule": finding.rule})


# endregion on_configure
