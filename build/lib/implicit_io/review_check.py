"""Review check: find new implicit-I/O hotspots in source files, without running them.

    implicit-io-check src/ tests/test_orders.py

prints one line per finding, ``path:line:col: CODE message``, as ruff does, and
exits 1 when it found something (2 when a file cannot be read or parsed). Silence
one line with ``# noqa: IO104`` (several codes: ``# noqa: IO104, IO201``).
Standard library only, so it runs in any CI job.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from implicit_io.rule_links import rule_url

SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "_build"}
NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*))?", re.I)


# region findings
@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str
    docs_url: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        return f"{where}: {self.code} {self.message} See {self.docs_url}"


class UnreadableSourceError(Exception):
    """A file the check was asked to read does not exist or does not parse."""


# endregion findings


# region visitor
class _Checker(ast.NodeVisitor):
    """Walks one module and collects (node, code, message) for each hotspot."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.AST, str, str]] = []
        self.in_async = False  # inside an ``async def`` (not a nested ``def``)
        self.loop_depth = 0  # loops and comprehensions of the current function

    def _function(self, node: ast.AST, is_async: bool) -> None:
        saved = self.in_async, self.loop_depth
        self.in_async, self.loop_depth = is_async, 0
        self.generic_visit(node)
        self.in_async, self.loop_depth = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, is_async=False)  # e.g. a callback for run_sync()

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, is_async=True)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, is_async=False)

    def _loop(self, node: ast.AST) -> None:
        self.loop_depth += 1
        self.generic_visit(node)
        self.loop_depth -= 1

    visit_For = visit_AsyncFor = visit_While = _loop
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _loop

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if _subscripted_name(node.annotation) == "DynamicMapped":
            self.found.append(
                (node, "IO105", "DynamicMapped is a dynamic relationship.")
            )
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "awaitable_attrs" and self.loop_depth:
            self.found.append(
                (node, "IO106", "awaitable_attrs inside a loop: one query per item.")
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _called_name(node)
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        if name in ("relationship", "backref"):
            lazy = keywords.get("lazy")
            if isinstance(lazy, ast.Constant) and lazy.value == "dynamic":
                self.found.append((node, "IO105", 'lazy="dynamic" loads on access.'))
            elif (
                name == "relationship"
                and "lazy" not in keywords
                and None not in keywords
            ):
                self.found.append(
                    (
                        node,
                        "IO104",
                        "relationship() declares no loading strategy (lazy=).",
                    )
                )
        elif name in ("AsyncSession", "async_sessionmaker") and None not in keywords:
            expire = keywords.get("expire_on_commit")
            if not (isinstance(expire, ast.Constant) and expire.value is False):
                self.found.append(
                    (node, "IO201", f"{name}() without expire_on_commit=False.")
                )
        elif name in ("expire", "expire_all") and self.in_async:
            self.found.append(
                (
                    node,
                    "IO204",
                    f"{name}() in async code: the next read is implicit I/O.",
                )
            )
        self.generic_visit(node)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _subscripted_name(annotation: ast.expr) -> str | None:
    if isinstance(annotation, ast.Subscript):
        value = annotation.value
        return (
            value.attr
            if isinstance(value, ast.Attribute)
            else getattr(value, "id", None)
        )
    return None


# endregion visitor


# region check
def check_source(
    source: str, path: str = "<string>", *, docs_base_url: str | None = None
) -> list[Finding]:
    """Findings for one module's source, minus those its ``# noqa`` comments silence."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        raise UnreadableSourceError(
            f"{path}:{error.lineno or 1}:{error.offset or 1}: cannot parse: {error.msg}"
        ) from None
    checker = _Checker()
    checker.visit(tree)
    silenced = _noqa_lines(source)
    findings = []
    for node, code, message in checker.found:
        codes = silenced.get(node.lineno, ())
        if codes is None or code in codes:
            continue  # a bare noqa comment silences every code on its line
        url = rule_url(code, docs_base_url)
        findings.append(
            Finding(path, node.lineno, node.col_offset + 1, code, message, url)
        )
    return sorted(findings, key=lambda f: (f.line, f.col, f.code))


def _noqa_lines(source: str) -> dict[int, frozenset[str] | None]:
    """Line -> the codes its ``# noqa: ...`` names (None: every code)."""
    lines: dict[int, frozenset[str] | None] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT and (match := NOQA.search(token.string)):
            codes = match["codes"]
            lines[token.start[0]] = (
                None if codes is None else frozenset(re.findall(r"\w+", codes.upper()))
            )
    return lines


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for found in sorted(path.rglob("*.py")):
                if not SKIPPED_DIRS & set(found.relative_to(path).parts):
                    yield found
        elif path.is_file():
            yield path
        else:
            raise UnreadableSourceError(f"{name}: no such file or directory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="implicit-io-check",
        description="Report implicit-I/O hotspots (rules IO104-IO106, IO201, IO204).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    parser.add_argument("--docs-url", help="base URL of the rule pages")
    arguments = parser.parse_args(argv)
    count = 0
    try:
        for path in python_files(arguments.paths):
            source = path.read_text(encoding="utf-8")
            for finding in check_source(
                source, str(path), docs_base_url=arguments.docs_url
            ):
                print(finding)
                count += 1
    except UnreadableSourceError as error:
        print(f"review_check: {error}", file=sys.stderr)
        return 2
    if count:
        print(f"Found {count} implicit-I/O hotspot(s).", file=sys.stderr)
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
# endregion check
