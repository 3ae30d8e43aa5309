"""``captured-variants``: output that differs per configuration, each as recorded.

    ```{captured-variants} failed-load-null-pool
    ```

A tab per configuration shows what a test recorded under that name there
(``record_capture``; proofs/captures/<configuration>.json), with the SQLAlchemy
version and a ``{proof}`` of the recording test; a configuration without it says
why ("Not recorded ..."). A name no configuration recorded fails the build.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from guide_runtime import configurations


def _not_recorded(record, tests: set[str]) -> str:
    """Why a configuration shows no output, and what holds there instead: the
    recording test's verdict on it (a skip says where the fact holds)."""
    if record is None:
        return "*Not recorded: no run of this configuration's suite is recorded.*"
    if record.stale:
        return f"*Not recorded for this checkout: {record.stale}.*"
    for test in sorted(tests):
        if record.outcome(test) == "skipped" and (why := record.skip_reason(test)):
            return f"*Not recorded here: its test does not run on this configuration ({why}).*"
        if record.outcome(test) != "passed":
            return f"*Not recorded: its test {record.outcome(test)} on this configuration.*"
    return "*Not recorded: its test ran here and passed without recording this output.*"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks that starts a line of text."""
    lines = text.split("\n")
    longest = max(len(line) - len(line.lstrip("`")) for line in lines)
    return "`" * max(3, longest + 1)


def _proof_target(nodeid: str) -> str:
    """``tests/test_x.py::test_y[case]`` → ``test_x::test_y``, as {proof} cites it."""
    path, _, name = nodeid.partition("::")
    return f"{Path(path).stem}::{name.split('[')[0]}"


class CapturedVariants(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        root = Path(self.env.srcdir)
        captures = configurations.load_captures(root)
        records = configurations.load_records(root)
        # Re-read when a capture changes; {proof} judges the records when written.
        for configuration in captures:
            self.env.note_dependency(
                str(configurations.captures_path(configuration, root))
            )
        if not any(name in recorded for recorded in captures.values()):
            raise self.error(
                f"captured-variants {name!r}: no suite recorded this capture. A test "
                f"must call record_capture({name!r}, text); then run the suites "
                "(make test, make test-sqlalchemy-2.0) to record it."
            )
        shown = [
            c
            for c in configurations.ALL_CONFIGURATIONS
            if c in captures or c in records
        ]
        entries = {c: e for c in shown if (e := captures.get(c, {}).get(name))}
        # The test that records this output, where some configuration recorded it.
        tests = {entry["test"].partition("[")[0] for entry in entries.values()}
        # Backtick fences, each level longer than the one inside it, so the
        # markup needs no MyST extension and no captured text can close it.
        code = _fence("\n".join(entry["text"] for entry in entries.values()))
        item, tab_set = code + "`", code + "``"
        lines = [f"{tab_set}{{tab-set}}"]
        for configuration in shown:
            lines.append(f"{item}{{tab-item}} {configuration.label}")
            entry, record = entries.get(configuration), records.get(configuration)
            if entry is None:
                lines.append(_not_recorded(record, tests))
            else:
                lines += [f"{code}text", entry["text"], code, ""]
                version = record.versions.get("sqlalchemy", "?") if record else "?"
                lines.append(
                    f"Recorded on SQLAlchemy {version} by "
                    f"{{proof}}`{_proof_target(entry['test'])}`."
                )
            lines.append(item)
        lines.append(tab_set)
        container = nodes.container(classes=["captured-variants"])
        container += self.parse_text_to_nodes("\n".join(lines))
        return [container]


def setup(app):
    app.add_directive("captured-variants", CapturedVariants)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
