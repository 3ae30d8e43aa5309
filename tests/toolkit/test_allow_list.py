from pathlib import Path

import pytest

from implicit_io.allow_list import AllowListError, load_allow_list
from implicit_io.guard import KnownException

GOOD = """
[[allow]]
rule = "IO102"
attribute = "Order.customer"
rationale = "nightly export, sync worker; ORD-7 removes it"
owner = "team-orders"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "allow.toml"
    path.write_text(text)
    return path


def test_entries_become_known_exceptions(tmp_path: Path) -> None:
    [entry] = load_allow_list(write(tmp_path, GOOD))
    assert entry == KnownException(
        "IO102",
        "Order.customer",
        "nightly export, sync worker; ORD-7 removes it",
        "team-orders",
    )


def test_an_empty_file_allows_nothing(tmp_path: Path) -> None:
    assert load_allow_list(write(tmp_path, "")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('owner = "team-orders"', ""), "'owner' is missing or empty"),
        (GOOD.replace("team-orders", " "), "'owner' is missing or empty"),
        (GOOD.replace('"IO102"', "102"), "'rule' is missing or empty"),
        (GOOD.replace("IO102", "IO999"), "unknown rule 'IO999'; use one the guard"),
        (GOOD.replace("Order.customer", "customer"), "is not 'Entity.attribute'"),
        (GOOD + 'ticket = "ORD-7"\n', "unknown key 'ticket'; an entry has exactly"),
        ('[allow]\nrule = "IO102"\n', "write each entry as an [[allow]] table"),
        ('[[allowed]]\nrule = "IO102"\n', "unknown key 'allowed'"),
        ("[[allow]\n", "not valid TOML"),
    ],
)
def test_a_bad_entry_names_file_entry_and_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AllowListError, match=str(path)) as raised:
        load_allow_list(path)
    assert message in str(raised.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AllowListError, match="cannot read the allow-list"):
        load_allow_list(tmp_path / "nope.toml")
