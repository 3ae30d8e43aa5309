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

import pprint
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from snippet_targets import check_targets, snippet_problems_fail_the_build
from sphinx.directives.code import container_wrapper
from sphinx.errors import ConfigError
from sphinx.util.docutils import SphinxDirective

from tests.harness import (
    DatabaseURLError,
    capture,
    checked_database_url,
    database_url,
    describe_error,
)

#: The Pygments lexer for each dialect's SQL; generic SQL for the others.
SQL_LEXERS = {"postgresql": "postgresql"}


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
        with snippet_problems_fail_the_build(self, target):
            captured = capture(target, seed)

        if expect == "ok" and captured.error is not None:
            raise self.error(
                f"captured-run {target!r} raised {describe_error(captured.error)}. "
                "Fix the snippet, or mark the example ':expect: error' if the page "
                "shows it failing."
            )
        if expect == "error" and captured.error is None:
            raise self.error(
                f"captured-run {target!r} is marked ':expect: error' but returned "
                f"{captured.result!r}. The page must not call a working example broken."
            )

        shown: list[nodes.Node] = []
        count = captured.statements.count
        if count:
            sql = nodes.literal_block("", _format_sql(captured.statements))
            # PostgreSQL's own lexer knows asyncpg's "$1::INTEGER" parameters.
            sql["language"] = SQL_LEXERS.get(captured.dialect, "sql")
            shown.append(container_wrapper(self, sql, _count_label(count)))
        elif captured.had_database:
            # A claim only where the snippet had a database it could have used.
            shown.append(nodes.paragraph("", _count_label(0)))
        if captured.error is not None:
            error = nodes.literal_block("", describe_error(captured.error))
            error["language"] = "text"
            error["classes"] = ["captured-error"]
            shown.append(container_wrapper(self, error, "Raised"))
        if captured.warnings:
            warned = nodes.literal_block("", "\n".join(captured.warnings))
            warned["language"] = "text"
            shown.append(container_wrapper(self, warned, "Warned"))
        if captured.logged:
            logged = nodes.literal_block("", "\n".join(captured.logged))
            logged["language"] = "text"
            shown.append(container_wrapper(self, logged, "Logged"))
        if captured.error is None and "show-result" in self.options:
            result = nodes.literal_block("", pprint.pformat(captured.result, width=80))
            result["language"] = "python"
            shown.append(container_wrapper(self, result, "Returned"))

        wrapper = nodes.container(classes=["captured-run"])
        wrapper += shown
        return [wrapper]


def check_database(app) -> None:
    """One clear error for a database URL the captured runs cannot use."""
    try:
        checked_database_url(database_url())
    except DatabaseURLError as error:
        raise ConfigError(str(error)) from None


def setup(app):
    app.add_directive("captured-run", CapturedRun)
    app.connect("builder-inited", check_database)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
