"""``captured-variants``: output that differs per configuration, each as recorded.

    ```{captured-variants} failed-load-null-pool
    ```

Shows, in tabs, the output a test recorded under that name on each configuration
(``record_capture`` in tests/conftest.py; written by ``--record-proofs`` runs to
proofs/captures/<configuration>.json), labelled with the configuration, the
versions it ran on and the test that proved it. A configuration whose suite
recorded no such output says "Not recorded"; nothing is filled in. A name that no
configuration recorded fails the build.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from tests import configurations


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks that starts a line of text."""
    lines = text.split("\n")
    longest = max(len(line) - len(line.lstrip("`")) for line in lines)
    return "`" * max(3, longest + 1)


class CapturedVariants(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        root = configurations.ROOT
        captures = configurations.load_captures(root)
        records = configurations.load_records(root)
        for configuration in captures:
            self.env.note_dependency(str(configurations.captures_path(configuration)))
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
        lines = ["::::{tab-set}"]
        for configuration in shown:
            lines.append(f":::{{tab-item}} {configuration.label}")
            entry = captures.get(configuration, {}).get(name)
            record = records.get(configuration)
            if entry is None:
                lines.append("*Not recorded on this configuration.*")
            else:
                fence = _fence(entry["text"])
                lines += [f"{fence}text", entry["text"], fence]
                test = entry["test"]
                version = record.versions.get("sqlalchemy", "?") if record else "?"
                note = f"Recorded by `{test}` on SQLAlchemy {version}."
                if record is None or record.stale:
                    why = record.stale if record else "no proof record"
                    note += f" Not current: {why}."
                lines.append(note)
            lines.append(":::")
        lines.append("::::")
        container = nodes.container(classes=["captured-variants"])
        container += self.parse_text_to_nodes("\n".join(lines))
        return [container]


def setup(app):
    app.add_directive("captured-variants", CapturedVariants)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
