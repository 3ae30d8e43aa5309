"""The allow-list file: the implicit loads a team accepts for now (rule IO401).

A TOML file with one ``[[allow]]`` table per accepted load::

    [[allow]]
    rule = "IO102"
    attribute = "Order.customer"
    rationale = "nightly export, sync worker; removed by ORD-123"
    owner = "team-orders"

A bad entry is an :class:`AllowListError` naming the file, the entry and the fix.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from implicit_io.guard import GUARD_RULES, KnownException

#: The keys of one entry, each a non-empty string.
ENTRY_KEYS = ("rule", "attribute", "rationale", "owner")


class AllowListError(ValueError):
    """The allow-list file is missing, is not TOML, or has a bad entry."""


# region allow_list
def load_allow_list(path: str | Path) -> list[KnownException]:
    """The entries of an allow-list file, each checked; else AllowListError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AllowListError(f"{path}: cannot read the allow-list: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise AllowListError(f"{path}: not valid TOML: {error}") from None
    unknown_tables = sorted(data.keys() - {"allow"})
    if unknown_tables:
        raise AllowListError(
            f"{path}: unknown key {unknown_tables[0]!r}; write each entry as an "
            "[[allow]] table"
        )
    entries = data.get("allow", [])
    if not isinstance(entries, list):
        raise AllowListError(f"{path}: write each entry as an [[allow]] table")
    return [_entry(path, number, entry) for number, entry in enumerate(entries, 1)]


def _entry(path: Path, number: int, entry: dict) -> KnownException:
    where = f"{path}: [[allow]] entry {number}"
    unknown = sorted(entry.keys() - set(ENTRY_KEYS))
    if unknown:
        raise AllowListError(
            f"{where}: unknown key {unknown[0]!r}; an entry has exactly "
            f"{', '.join(ENTRY_KEYS)}"
        )
    for key in ENTRY_KEYS:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise AllowListError(
                f"{where}: {key!r} is missing or empty; give {key} as a non-empty "
                "string (IO401: every known exception says what, why and who)"
            )
    if entry["rule"] not in GUARD_RULES:
        raise AllowListError(
            f"{where}: unknown rule {entry['rule']!r}; use one the guard reports: "
            f"{', '.join(sorted(GUARD_RULES))}"
        )
    entity, _, attribute = entry["attribute"].partition(".")
    if not (entity.isidentifier() and attribute.isidentifier()):
        raise AllowListError(
            f"{where}: attribute {entry['attribute']!r} is not 'Entity.attribute' "
            "(the class name and the attribute, as the guard reports them)"
        )
    return KnownException(**{key: entry[key] for key in ENTRY_KEYS})


# endregion allow_list
