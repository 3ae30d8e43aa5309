"""``captured-run``: run a snippet during the build and show what it really did.

    ```{captured-run} eager_loading:post_titles_by_author
    :expect: ok            # or: error (the page says this example fails)
    :show-result:          # also show the value it returned
    :seed: module:function # optional: other data than the sample users
    ```

The snippet runs on a fresh database through the same harness the tests use. The
SQL it sent, the statement count and any exception are captured, never typed. A
snippet that takes no database argument gets no count: it had no database to use.
"""

from __future__ import annotations

import os
import pprint
import re
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from executed_store import cached
from snippet_targets import check_targets, snippet_problems_fail_the_build
from sphinx import addnodes
from sphinx.directives.code import container_wrapper
from sphinx.errors import ConfigError
from sphinx.util.docutils import SphinxDirective

#: The Pygments lexer for each dialect's SQL; generic SQL for the others.
SQL_LEXERS = {"postgresql": "postgresql"}
# SQLAlchemy names an anonymous bound parameter after the id() of its object, and
# Python's default repr() shows an object's address: both change on every run.
_ANONYMOUS_PARAMETER = re.compile(r"%\((\d+) param\)s")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def stable_output(text: str) -> str:
    """``text`` with run-to-run noise made stable, so two builds show the same bytes.

    Anonymous parameters are renumbered in order of appearance (``%(param_1)s``, as
    SQLAlchemy names them in compiled SQL), and addresses in reprs are dropped.
    """
    numbers: dict[str, int] = {}

    def renumber(match: re.Match[str]) -> str:
        number = numbers.setdefault(match[1], len(numbers) + 1)
        return f"%(param_{number})s"

    return _ADDRESS.sub(">", _ANONYMOUS_PARAMETER.sub(renumber, text))


NEVER_AWAITED = "was never awaited"
NEVER_AWAITED_LABEL = "never-awaited"  # the troubleshooting entry that explains it


def _never_awaited_note(docname: str) -> nodes.paragraph:
    """Under the warning every failed implicit load leaves: where it is explained."""
    note = nodes.paragraph(classes=["captured-note"])
    note += nodes.Text("Every failed implicit load leaves this warning: ")
    ref = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="ref",
        reftarget=NEVER_AWAITED_LABEL,
        refexplicit=True,
        refdoc=docname,
    )
    ref += nodes.inline("", "why, and why not to filter it")
    note += ref
    note += nodes.Text(".")
    return note


def _format_sql(capture_log) -> str:
    blocks = []
    for statement in capture_log.statements:
        sql = statement.sql.strip()
        if statement.parameters not in ((), [], {}, None):
            sql += f"\n-- parameters: {statement.parameters!r}"
        blocks.append(sql + ";")
    return "\n\n".join(blocks)


def _count_label(count: int) -> str:
    if count == 0:
        return "No SQL sent"
    return f"{count} statement{'s' if count != 1 else ''} sent"


def run_once(target: str, seed: str | None) -> dict:
    """What a run shows, as JSON data the result store can keep."""
    # Imported on first run: a build that finds every result stored needs no SQLAlchemy.
    from guide_runtime.capture import capture, describe_error

    captured = capture(target, seed)
    failed = captured.error is not None
    return {
        "count": captured.statements.count,
        "sql": stable_output(_format_sql(captured.statements)),
        "dialect": captured.dialect,
        "had_database": captured.had_database,
        "error": stable_output(describe_error(captured.error)) if failed else None,
        "warnings": [stable_output(warning) for warning in captured.warnings],
        "logged": [stable_output(line) for line in captured.logged],
        "returned": None if failed else repr(captured.result),
        "result": None
        if failed
        else stable_output(pprint.pformat(captured.result, width=80)),
    }


class CapturedRun(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar = {
        "expect": lambda arg: directives.choice(arg, ("ok", "error")),
        "seed": directives.unchanged_required,
        "show-result": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        target = self.arguments[0]
        seed = self.options.get("seed")
        check_targets(self, target, *([seed] if seed else []))
        expect = self.options.get("expect", "ok")

        def run_and_check() -> dict:
            captured = run_once(target, seed)
            self._check(target, expect, captured)  # a refused run is not stored
            return captured

        with snippet_problems_fail_the_build(self, target):
            captured = cached(
                self,
                [target, *([seed] if seed else [])],
                {"target": target, "seed": seed},
                run_and_check,
            )

        self._check(target, expect, captured)

        shown: list[nodes.Node] = []
        count = captured["count"]
        if count:
            sql = nodes.literal_block("", captured["sql"])
            # PostgreSQL's own lexer knows asyncpg's "$1::INTEGER" parameters.
            sql["language"] = SQL_LEXERS.get(captured.get("dialect", ""), "sql")
            shown.append(container_wrapper(self, sql, _count_label(count)))
        elif captured["had_database"]:
            # A claim only where the snippet had a database it could have used.
            shown.append(nodes.paragraph("", _count_label(0)))
        if captured["error"] is not None:
            error = nodes.literal_block("", captured["error"])
            error["language"] = "text"
            error["classes"] = ["captured-error"]
            shown.append(container_wrapper(self, error, "Raised"))
        if captured["warnings"]:
            warned = nodes.literal_block("", "\n".join(captured["warnings"]))
            warned["language"] = "text"
            shown.append(container_wrapper(self, warned, "Warned"))
            if any(NEVER_AWAITED in warning for warning in captured["warnings"]):
                shown.append(_never_awaited_note(self.env.docname))
        if captured["logged"]:
            logged = nodes.literal_block("", "\n".join(captured["logged"]))
            logged["language"] = "text"
            shown.append(container_wrapper(self, logged, "Logged"))
        if captured["error"] is None and "show-result" in self.options:
            result = nodes.literal_block("", captured["result"])
            result["language"] = "python"
            shown.append(container_wrapper(self, result, "Returned"))

        wrapper = nodes.container(classes=["captured-run"])
        wrapper += shown
        return [wrapper]

    def _check(self, target: str, expect: str, captured: dict) -> None:
        if expect == "ok" and captured["error"] is not None:
            raise self.error(
                f"captured-run {target!r} raised {captured['error']}. "
                "Fix the snippet, or mark the example ':expect: error' if the page "
                "shows it failing."
            )
        if expect == "error" and captured["error"] is None:
            raise self.error(
                f"captured-run {target!r} is marked ':expect: error' but returned "
                f"{captured['returned']}. The page must not call a working example broken."
            )


def check_database(app) -> None:
    """One clear error for a database URL the captured runs cannot use."""
    # The harness owns the variable; unset, there is nothing to check (and a build
    # that finds every result stored then needs no SQLAlchemy).
    if not os.environ.get("GUIDE_DATABASE_URL"):
        return
    from guide_runtime.database import (
        DatabaseURLError,
        checked_database_url,
        database_url,
    )

    try:
        checked_database_url(database_url())
    except DatabaseURLError as error:
        raise ConfigError(str(error)) from None


def setup(app):
    app.setup_extension("executed_store")
    app.add_directive("captured-run", CapturedRun)
    app.connect("builder-inited", check_database)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
