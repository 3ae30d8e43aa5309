"""``{captured-run}``, ``{round-trips}`` and ``{generated-table}``: what code did,
as the test suite recorded it.

    ```{captured-run} eager_loading:post_titles_by_author
    :expect: ok            # or: error (the page says this example fails)
    :show-result:          # also show the value it returned
    :seed: module:function # optional: other data than the sample users
    ```

The build runs nothing: ``tests/examples/test_page_outputs.py`` records each request
on each configuration in ``proofs/outputs/``. The default configuration's record must
exist and come from the snippet modules now on disk, or the build fails naming the
page, the module and ``make record``. Outputs that differ by configuration get a tab
each; the page says where each was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from guide_runtime import outputs
from guide_runtime.configurations import ALL_CONFIGURATIONS, DEFAULT, Configuration
from guide_runtime.outputs import (
    CapturedRunSyntax,
    Entry,
    GeneratedTableSyntax,
    Request,
    RoundTripsSyntax,
    round_trips_request,
)
from implicit_io.rule_links import DEFAULT_DOCS_URL

from .charts import round_trip_figure
from .markup import inline_code, table, text_table, xref

#: The Pygments lexer for each dialect's SQL; generic SQL for the others.
SQL_LEXERS = {"postgresql": "postgresql"}
NEVER_AWAITED = "was never awaited"
NEVER_AWAITED_LABEL = "never-awaited"  # the troubleshooting entry that explains it
VARYING = ("result", "returned")


def _readdressed(output: Any, base_url: str) -> Any:
    """``output`` with every rule link moved from the default address to ``base_url``."""
    return json.loads(json.dumps(output).replace(DEFAULT_DOCS_URL, base_url))


@cache
def _load(root: Path, configuration: Configuration, stamp) -> dict[str, Entry]:
    return outputs.load_outputs(configuration, root)


def _recorded(root: Path, configuration: Configuration) -> dict[str, Entry]:
    """The configuration's records, read once per version of the file."""
    path = outputs.outputs_path(configuration, root)
    status = path.stat() if path.is_file() else None
    return _load(root, configuration, status and (status.st_mtime_ns, status.st_size))


class RecordedDirective(SphinxDirective):
    """Renders the records of ``request()``, each output by ``render(output)``."""

    request: Callable[[], Request]
    render: Callable[[Any], list[nodes.Node]]
    #: Fields of the output that change from run to run: not compared.
    varying: tuple[str, ...] = ()

    def check(self, request: Request, output: Any) -> None:
        """Refuse an output the page must not show (ValueError)."""

    def run(self) -> list[nodes.Node]:
        try:
            request = self.request()
        except ValueError as problem:
            raise self.error(str(problem)) from None
        root = Path(self.env.srcdir)
        for module in request.modules:
            if not (root / module).is_file():
                raise self.error(
                    f"{self.name} {request.target!r}: {module} does not exist. Name a "
                    "function in snippets/ as 'module:function'."
                )
            self.env.note_dependency(str(root / module))
        groups, missing = self._groups(root, request)
        if self.config.html_baseurl != DEFAULT_DOCS_URL:
            # Recorded citing the default address: this build publishes elsewhere.
            groups = [
                (c, _readdressed(out, self.config.html_baseurl)) for c, out in groups
            ]
        if len(groups) == 1:
            configs, output = groups[0]
            return [*self.render(output), self._where(configs, missing)]
        return [self._tabs(groups), self._where([], missing)]

    def _groups(self, root: Path, request: Request):
        """(configurations, output) for each distinct current output, the default
        configuration's first; and the configurations with no current record."""
        for configuration in ALL_CONFIGURATIONS:
            self.env.note_dependency(str(outputs.outputs_path(configuration, root)))
        entry = _recorded(root, DEFAULT).get(request.key)
        if entry is None:
            raise self.error(
                f"{request.key}: no output of it is recorded on {DEFAULT.label}. "
                f"Record it: {outputs.RECORD_COMMAND}."
            )
        if stale := entry.stale_modules(request, root):
            raise self.error(
                f"{request.key}: its recorded output was made from other code than "
                f"{', '.join(stale)} now on disk. Re-record it: "
                f"{outputs.RECORD_COMMAND}."
            )
        try:
            self.check(request, entry.output)
        except ValueError as problem:
            raise self.error(f"{request.key}: {problem}") from None
        groups: list[tuple[list[Configuration], Any]] = []
        by_output: dict[str, list[Configuration]] = {}
        missing = []
        for configuration in ALL_CONFIGURATIONS:  # the default first
            found = _recorded(root, configuration).get(request.key)
            if found is None or found.stale_modules(request, root):
                missing.append(configuration)
                continue
            shown = found.output
            if isinstance(shown, dict) and self.varying:
                shown = {k: v for k, v in shown.items() if k not in self.varying}
            same = json.dumps(shown, sort_keys=True)
            if same not in by_output:
                by_output[same] = []
                groups.append((by_output[same], found.output))
            by_output[same].append(configuration)
        return groups, missing

    def _where(self, configurations: list[Configuration], missing) -> nodes.paragraph:
        parts = []
        if configurations:
            parts.append("Recorded on " + ", ".join(c.short for c in configurations))
        if missing:
            parts.append("no current record on " + ", ".join(c.short for c in missing))
        text = "; ".join(parts)
        return nodes.paragraph(
            "", text[:1].upper() + text[1:] + ".", classes=["captured-where"]
        )

    def _tabs(self, groups) -> nodes.Node:
        """A sphinx-design tab per distinct output, parsed from markup, then filled."""
        fence = "`" * 3
        lines = [f"{fence}`{{tab-set}}"]
        for configs, _ in groups:
            label = ", ".join(c.short for c in configs)
            lines += [f"{fence}{{tab-item}} {label}", "output", fence]
        lines.append(f"{fence}`")
        container = nodes.container(classes=["recorded-variants"])
        container += self.parse_text_to_nodes("\n".join(lines))
        contents = [
            node
            for node in container.findall(nodes.container)
            if node.get("design_component") == "tab-content"
        ]
        for content, (_, output) in zip(contents, groups, strict=True):
            content[:] = self.render(output)
        return container


# --- captured-run ---------------------------------------------------------------


def _count_label(count: int) -> str:
    if count == 0:
        return "No SQL sent"
    return f"{count} statement{'s' if count != 1 else ''} sent"


def _never_awaited_note(docname: str) -> nodes.paragraph:
    """Under the warning every failed implicit load leaves: where it is explained."""
    why = nodes.inline("", "why, and why not to filter it")
    return nodes.paragraph(
        "",
        "",
        nodes.Text("Every failed implicit load leaves this warning: "),
        xref("ref", NEVER_AWAITED_LABEL, docname, why),
        nodes.Text("."),
        classes=["captured-note"],
    )


class CapturedRun(RecordedDirective):
    required_arguments = CapturedRunSyntax.required_arguments
    option_spec: ClassVar = CapturedRunSyntax.option_spec

    @property
    def varying(self) -> tuple[str, ...]:
        return VARYING if "result-varies" in self.options else ()

    def request(self) -> Request:
        return Request("captured-run", self.arguments[0], seed=self.options.get("seed"))

    def check(self, request: Request, output: Any) -> None:
        expect = self.options.get("expect", "ok")
        if expect == "ok" and output["error"] is not None:
            raise ValueError(
                f"raised {output['error']}. Fix the snippet, or mark the example "
                "':expect: error' if the page shows it failing."
            )
        if expect == "error" and output["error"] is None:
            raise ValueError(
                f"is marked ':expect: error' but returned {output['returned']}. The "
                "page must not call a working example broken."
            )

    def _block(self, text: str, language: str, caption: str, **kw) -> nodes.Node:
        block = nodes.literal_block("", text, **kw)
        block["language"] = language
        # What Sphinx's container_wrapper makes, without parsing the caption as
        # markup: every caption here is plain text.
        wrapper = nodes.container("", literal_block=True)
        wrapper["classes"] = ["literal-block-wrapper"]
        wrapper += nodes.caption(caption, "", nodes.Text(caption))
        wrapper += block
        return wrapper

    def render(self, output: Any) -> list[nodes.Node]:
        shown: list[nodes.Node] = []
        if output["count"]:
            language = SQL_LEXERS.get(output["dialect"], "sql")
            shown.append(
                self._block(output["sql"], language, _count_label(output["count"]))
            )
        elif output["had_database"]:
            # A claim only where the snippet had a database it could have used.
            shown.append(nodes.paragraph("", _count_label(0)))
        if output["error"] is not None:
            shown.append(
                self._block(
                    output["error"], "text", "Raised", classes=["captured-error"]
                )
            )
        if output["warnings"]:
            shown.append(self._block("\n".join(output["warnings"]), "text", "Warned"))
            if any(NEVER_AWAITED in warning for warning in output["warnings"]):
                shown.append(_never_awaited_note(self.env.docname))
        if output["logged"]:
            shown.append(self._block("\n".join(output["logged"]), "text", "Logged"))
        if output["error"] is None and "show-result" in self.options:
            caption = "Returned (one run; it varies)" if self.varying else "Returned"
            shown.append(self._block(output["result"], "python", caption))
        wrapper = nodes.container(classes=["captured-run"])
        wrapper += shown
        return [wrapper]


# --- round-trips ----------------------------------------------------------------


class RoundTrips(RecordedDirective):
    """The statements each strategy (a line of content: ``module:function label``)
    sends as the data grows (``:parents: 10 100 1000``), seeded by the argument."""

    required_arguments = RoundTripsSyntax.required_arguments
    has_content = True
    option_spec: ClassVar = RoundTripsSyntax.option_spec

    def request(self) -> Request:
        parents = self.options.get("parents", "")
        return round_trips_request(self.arguments[0], parents, list(self.content))

    def render(self, output: Any) -> list[nodes.Node]:
        request = self.request()
        header = ["Strategy", *(f"{size} parents" for size in request.sizes)]
        rows = [(label, n) for (_, label), n in zip(request.rows, output, strict=True)]
        body = [
            [inline_code(label), *([nodes.Text(str(n))] for n in counts)]
            for label, counts in rows
        ]
        # The chart's ids are unique on the page (a tab holds a table each).
        chart_id = f"round-trips-{self.env.new_serialno('round-trips') + 1}"
        plain = [(label.replace("`", ""), counts) for label, counts in rows]
        return [
            table([[[nodes.Text(h)] for h in header], *body], "round-trips"),
            round_trip_figure(header, plain, chart_id),
        ]


# --- generated-table ------------------------------------------------------------


class GeneratedTable(RecordedDirective):
    """A table whose rows a snippet function computes (``:caption:`` optional)."""

    required_arguments = GeneratedTableSyntax.required_arguments
    option_spec: ClassVar = GeneratedTableSyntax.option_spec

    def request(self) -> Request:
        return Request("generated-table", self.arguments[0])

    def render(self, output: Any) -> list[nodes.Node]:
        return [text_table(output, "generated-table", self.options.get("caption"))]


def setup(app):
    app.add_directive("captured-run", CapturedRun)
    app.add_directive("round-trips", RoundTrips)
    app.add_directive("generated-table", GeneratedTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
