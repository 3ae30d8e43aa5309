"""Review check: find implicit-I/O hotspots in source files, without running them.

    implicit-io-check src/ tests/test_orders.py
    implicit-io-check --diff origin/main --format github src/

prints one finding per line, ``path:line:col: CODE message``, as ruff does. Exit
status: 0 nothing found, 1 findings (a file it could not check is a finding of
its own, ``IOE001``), 2 a usage error (a path that does not exist, a bad git ref).
Silence one line with ``# noqa: IO104`` (several codes: ``# noqa: IO104, IO201``).

Files are parsed with libcst, whose parser reads Python 3.0 to 3.14 syntax
whatever Python runs the check, and every name is resolved through the module's
imports and scopes before it is judged.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from implicit_io import __version__
from implicit_io.rule_links import KNOWN_RULES, page_url, rule_url

SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", "_build"}
NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*))?", re.I)
#: Every rule is about one of these names: a file without them has no finding.
MENTIONS = re.compile(
    r"relation|backref|DynamicMapped|Session|sessionmaker|expire|awaitable_attrs"
)
#: The code of a file the check could not read or parse (not a rule: a gap).
NOT_CHECKED = "IOE001"
NOT_CHECKED_PAGE = "guides/review-check.html#files-it-cannot-check"


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


class UsageError(Exception):
    """The check was asked for something it cannot do (exit status 2)."""


# endregion findings


# region names
#: SQLAlchemy's names, as an import binds them (``sqlalchemy.orm.relationship``
#: also covers ``import sqlalchemy as sa; sa.orm.relationship``). A name counts
#: only when the module's imports bind it to one of these.
ASYNC_SESSIONS = {
    "sqlalchemy.ext.asyncio.AsyncSession",
    "sqlalchemy.ext.asyncio.session.AsyncSession",
    "sqlmodel.ext.asyncio.session.AsyncSession",  # a subclass, same default
}
ASYNC_FACTORIES = {
    "sqlalchemy.ext.asyncio.async_sessionmaker",
    "sqlalchemy.ext.asyncio.session.async_sessionmaker",
}
SESSIONMAKERS = {"sqlalchemy.orm.sessionmaker", "sqlalchemy.orm.session.sessionmaker"}
SESSIONS = ASYNC_SESSIONS | {
    "sqlalchemy.orm.Session",
    "sqlalchemy.orm.session.Session",
    "sqlalchemy.orm.scoped_session",
    "sqlalchemy.ext.asyncio.async_scoped_session",
    "sqlmodel.Session",
    "sqlmodel.orm.session.Session",
}
RELATIONSHIPS = {"sqlalchemy.orm.relationship", "sqlalchemy.orm.relation"}
BACKREFS = {"sqlalchemy.orm.backref"}
DYNAMIC_MAPPED = {"sqlalchemy.orm.DynamicMapped"}
#: ``Session.expire(instance, attribute_names=None)``: what its arguments may be.
EXPIRE_KEYWORDS = {"instance", "attribute_names"}
NOT_ATTRIBUTE_NAMES = (
    cst.Integer,
    cst.Float,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.FormattedString,
)


# endregion names


# region scopes
@dataclass
class _Scope:
    """The names one module, class or function binds, and how."""

    kind: str  # "module", "class" or "function"
    imports: dict[str, set[str]] = field(default_factory=dict)  # name -> qualified
    locals: set[str] = field(default_factory=set)  # bound any other way
    annotations: dict[str, list[cst.BaseExpression | None]] = field(
        default_factory=dict
    )  # what each local binding declares (None: nothing)


class _Scopes(cst.CSTVisitor):
    """First pass: the bindings of every scope, keyed by the node that opens it.

    A name is local to a scope if anything there binds it (as Python decides),
    so it is collected before the checker judges any use of it.
    """

    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.scopes: dict[cst.CSTNode, _Scope] = {module: _Scope("module")}
        self.stack = [self.scopes[module]]

    def _open(self, node: cst.CSTNode, kind: str) -> None:
        self.scopes[node] = _Scope(kind)
        self.stack.append(self.scopes[node])

    def _close(self, node: cst.CSTNode) -> None:
        self.stack.pop()

    def _bind(self, target: cst.BaseExpression, annotation=None) -> None:
        if isinstance(target, cst.Name):
            scope = self.stack[-1]
            scope.locals.add(target.value)
            scope.annotations.setdefault(target.value, []).append(annotation)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._bind(node.name)
        self._open(node, "function")

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._open(node, "function")

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._bind(node.name)
        self._open(node, "class")

    leave_FunctionDef = leave_Lambda = leave_ClassDef = _close

    def visit_Param(self, node: cst.Param) -> None:
        self._bind(node.name, node.annotation and node.annotation.annotation)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = _dotted(alias.name)
            if alias.asname is not None:
                bound = alias.asname.name
                self.stack[-1].imports.setdefault(bound.value, set()).add(dotted)
            else:  # import a.b binds a
                first = dotted.split(".")[0]
                self.stack[-1].imports.setdefault(first, set()).add(first)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar) or node.relative:
            return  # a relative import is the application's own code
        module = _dotted(node.module)
        for alias in node.names:
            name = alias.name.value
            bound = alias.asname.name.value if alias.asname else name
            self.stack[-1].imports.setdefault(bound, set()).add(f"{module}.{name}")

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target, node.annotation.annotation)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:  # with ... as x, except E as x
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False  # its AsName binds an import, handled by visit_Import(From)


# endregion scopes


# region visitor
class _Checker(cst.CSTVisitor):
    """Walks one module and collects (node, code, message) for each hotspot."""

    def __init__(self, scopes: dict[cst.CSTNode, _Scope], module: cst.Module) -> None:
        super().__init__()
        self.scopes = scopes
        self.stack = [scopes[module]]
        self.found: list[tuple[cst.CSTNode, str, str]] = []
        self.comments: list[cst.Comment] = []
        self.awaited: set[int] = set()  # id() of every awaited expression
        # Per function: inside an ``async def`` (not a nested ``def``)? loop depth?
        self.functions: list[list] = [[False, 0]]

    # Names: what an import binds them to, looked up as Python does.
    def imported(self, node: cst.BaseExpression) -> set[str]:
        """The qualified names an import binds ``node`` to (none if bound locally)."""
        if isinstance(node, cst.Attribute):
            return {f"{base}.{node.attr.value}" for base in self.imported(node.value)}
        if not isinstance(node, cst.Name):
            return set()
        scope = self._scope_of(node.value)
        if scope is None or node.value in scope.locals:
            return set()  # a parameter, a variable, a class: not SQLAlchemy's
        return scope.imports[node.value]

    def _scope_of(self, name: str) -> _Scope | None:
        innermost = True
        for scope in reversed(self.stack):
            # A function does not see the names of the class body around it.
            if scope.kind == "class" and not innermost:
                continue
            innermost = False
            if name in scope.imports or name in scope.locals:
                return scope
        return None

    # Where we are: which scope, async or sync function, inside a loop or not.
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append(self.scopes[node])
        self.functions.append([node.asynchronous is not None, 0])

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.stack.append(self.scopes[node])
        self.functions.append([False, 0])

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.append(self.scopes[node])

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.pop()

    def _leave_function(self, node: cst.CSTNode) -> None:
        self.stack.pop()
        self.functions.pop()

    leave_FunctionDef = leave_Lambda = _leave_function

    def _enter_loop(self, node: cst.CSTNode) -> None:
        self.functions[-1][1] += 1

    def _leave_loop(self, node: cst.CSTNode) -> None:
        self.functions[-1][1] -= 1

    visit_For = visit_While = visit_ListComp = visit_SetComp = _enter_loop
    visit_DictComp = visit_GeneratorExp = _enter_loop
    leave_For = leave_While = leave_ListComp = leave_SetComp = _leave_loop
    leave_DictComp = leave_GeneratorExp = _leave_loop

    def visit_Comment(self, node: cst.Comment) -> None:
        if NOQA.search(node.value):
            self.comments.append(node)

    def visit_Await(self, node: cst.Await) -> None:
        self.awaited.add(id(node.expression))

    # The rules.
    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        annotation = node.annotation.annotation
        if isinstance(annotation, cst.Subscript) and (
            self.imported(annotation.value) & DYNAMIC_MAPPED
        ):
            self.found.append(
                (node, "IO105", "DynamicMapped is a dynamic relationship.")
            )

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "awaitable_attrs" and self.functions[-1][1]:
            self.found.append(
                (node, "IO106", "awaitable_attrs inside a loop: one query per item.")
            )

    def visit_Call(self, node: cst.Call) -> None:
        names = self.imported(node.func)
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword}
        splat = any(a.star == "**" for a in node.args)  # benefit of the doubt
        if names & (RELATIONSHIPS | BACKREFS):
            lazy = keywords.get("lazy")
            if _string(lazy) == "dynamic":
                self.found.append((node, "IO105", 'lazy="dynamic" loads on access.'))
            elif names & RELATIONSHIPS and lazy is None and not splat:
                message = "relationship() declares no loading strategy (lazy=)."
                self.found.append((node, "IO104", message))
        elif self._makes_async_sessions(names, keywords) and not splat:
            expire = keywords.get("expire_on_commit")
            if not (isinstance(expire, cst.Name) and expire.value == "False"):
                message = f"{_dotted(node.func)}() without expire_on_commit=False."
                self.found.append((node, "IO201", message))
        elif self._is_session_expire(node):
            method = node.func.attr.value  # type: ignore[union-attr]
            message = f"{method}() in async code: the next read is implicit I/O."
            self.found.append((node, "IO204", message))

    def _makes_async_sessions(self, names: set[str], keywords: dict) -> bool:
        if names & (ASYNC_SESSIONS | ASYNC_FACTORIES):
            return True
        # sessionmaker(class_=AsyncSession): the 1.4-era spelling of the factory.
        class_ = keywords.get("class_")
        return bool(
            names & SESSIONMAKERS and class_ and self.imported(class_) & ASYNC_SESSIONS
        )

    def _is_session_expire(self, call: cst.Call) -> bool:
        """A call that can be ``Session.expire()``/``expire_all()`` in async code."""
        func = call.func
        if not (
            self.functions[-1][0]
            and isinstance(func, cst.Attribute)
            and func.attr.value in ("expire", "expire_all")
        ):
            return False
        if id(call) in self.awaited:
            return False  # neither is a coroutine: this is another library's expire
        if any(a.star for a in call.args):
            return self._can_be_session(func.value)
        positional = [a.value for a in call.args if not a.keyword]
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword}
        if func.attr.value == "expire_all":
            if call.args:
                return False  # Session.expire_all() takes no argument
        elif (
            keywords.keys() - EXPIRE_KEYWORDS
            or not 1 <= len(positional) + len(keywords) <= 2
            or isinstance(
                (positional[1:] or [keywords.get("attribute_names")])[0],
                NOT_ATTRIBUTE_NAMES,
            )
        ):
            return False  # e.g. a cache's expire(key, seconds)
        return self._can_be_session(func.value)

    def _can_be_session(self, receiver: cst.BaseExpression) -> bool:
        """False only when annotations say the receiver is something else."""
        if not isinstance(receiver, cst.Name):
            return True
        scope = self._scope_of(receiver.value)
        if scope is None or receiver.value not in scope.locals:
            return True
        for annotation in scope.annotations.get(receiver.value, [None]):
            if annotation is None:
                return True  # a binding that declares no type
            for named in _annotated_types(annotation):
                types = self.imported(named)
                if not types or types & SESSIONS:
                    return True  # a session class, or one we cannot resolve
        return False


def _annotated_types(annotation: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """``X``, ``X | None``, ``Optional[X]``: the classes named, without None."""
    if isinstance(annotation, cst.BinaryOperation):
        yield from _annotated_types(annotation.left)
        yield from _annotated_types(annotation.right)
    elif isinstance(annotation, cst.Subscript) and _dotted(annotation.value) in (
        "Optional",
        "typing.Optional",
    ):
        for element in annotation.slice:
            if isinstance(element.slice, cst.Index):
                yield from _annotated_types(element.slice.value)
    elif not (isinstance(annotation, cst.Name) and annotation.value == "None"):
        yield annotation


def _string(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value if isinstance(node.evaluated_value, str) else None
    return None


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return node.value if isinstance(node, cst.Name) else "..."


# endregion visitor


# region check
def check_source(
    source: str, path: str = "<string>", *, docs_base_url: str | None = None
) -> list[Finding]:
    """Findings for one module's source, minus those its ``# noqa`` comments silence.

    A module that does not parse is one finding, ``IOE001``, not an exception.
    One that names nothing the rules are about is not parsed at all.
    """
    if not MENTIONS.search(source):
        return []
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        reason = f"not checked: cannot parse it: {error.message}."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        return [
            Finding(
                path, error.raw_line, error.raw_column + 1, NOT_CHECKED, reason, url
            )
        ]
    scopes = _Scopes(module)
    module.visit(scopes)
    checker = _Checker(scopes.scopes, module)
    module.visit(checker)
    if not checker.found:
        return []
    # Positions cost more than the check itself: only for modules with findings.
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    silenced = _noqa_lines(checker.comments, positions)
    findings = []
    for node, code, message in checker.found:
        start = positions[node].start
        codes = silenced.get(start.line, ())
        if codes is None or code in codes:
            continue  # a bare noqa comment silences every code on its line
        url = rule_url(code, docs_base_url)
        findings.append(Finding(path, start.line, start.column + 1, code, message, url))
    return sorted(findings, key=lambda f: (f.line, f.col, f.code))


def _noqa_lines(comments, positions) -> dict[int, frozenset[str] | None]:
    """Line -> the codes its ``# noqa: ...`` names (None: every code)."""
    lines: dict[int, frozenset[str] | None] = {}
    for comment in comments:
        codes = NOQA.search(comment.value)["codes"]
        lines[positions[comment].start.line] = (
            None if codes is None else frozenset(re.findall(r"\w+", codes.upper()))
        )
    return lines


def check_file(path: Path, *, docs_base_url: str | None = None) -> list[Finding]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = f"not checked: cannot read it: {error}."
        url = page_url(NOT_CHECKED_PAGE, docs_base_url)
        return [Finding(str(path), 1, 1, NOT_CHECKED, reason, url)]
    return check_source(source, str(path), docs_base_url=docs_base_url)


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
            raise UsageError(f"{name}: no such file or directory")


# endregion check


# region diff
def changed_lines(ref: str) -> dict[Path, set[int] | None]:
    """Lines added or changed since git ref ``ref``, by resolved path.

    ``None`` means the whole file: untracked files are new in their entirety.
    """
    top = Path(_git("rev-parse", "--show-toplevel").strip())
    changed: dict[Path, set[int] | None] = {}
    current: set[int] | None = None
    diff = _git("diff", "--unified=0", "--no-color", "--no-ext-diff", ref, "--")
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None
            if name != "/dev/null":
                current = changed.setdefault((top / name[2:]).resolve(), set())
        elif line.startswith("@@") and current is not None:
            match = re.search(r"\+(\d+)(?:,(\d+))?", line)
            start, count = int(match[1]), int(match[2] or 1)
            current.update(range(start, start + count))
    for name in _git("ls-files", "--others", "--exclude-standard", "--full-name").split(
        "\n"
    ):
        if name:
            changed[(top / name).resolve()] = None
    return changed


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True
        )
    except FileNotFoundError:
        raise UsageError("--diff needs git on the PATH") from None
    except subprocess.CalledProcessError as error:
        raise UsageError(f"git {' '.join(args[:2])}: {error.stderr.strip()}") from None
    return done.stdout


def in_diff(finding: Finding, changed: dict[Path, set[int] | None]) -> bool:
    path = Path(finding.path).resolve()
    if path not in changed:
        return False
    lines = changed[path]
    return lines is None or finding.code == NOT_CHECKED or finding.line in lines


# endregion diff


# region formats
def as_text(findings: list[Finding]) -> str:
    return "".join(f"{finding}\n" for finding in findings)


def as_github(findings: list[Finding]) -> str:
    """GitHub Actions workflow commands: one annotation per finding."""

    def escape(text: str, *, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    lines = []
    for f in findings:
        where = f"file={escape(f.path, prop=True)},line={f.line},col={f.col}"
        text = escape(f"{f.message} See {f.docs_url}")
        lines.append(f"::error {where},title={escape(f.code, prop=True)}::{text}\n")
    return "".join(lines)


def as_sarif(findings: list[Finding]) -> str:
    """SARIF 2.1.0: one run, the rules it reported, one result per finding."""
    codes = sorted({f.code: f.docs_url for f in findings}.items())
    rules = [
        {
            "id": code,
            "name": KNOWN_RULES.get(code, "file-not-checked"),
            "shortDescription": {"text": KNOWN_RULES.get(code, "file not checked")},
            "helpUri": url.split("#")[0] if code == NOT_CHECKED else url,
        }
        for code, url in codes
    ]
    index = {code: number for number, (code, _) in enumerate(codes)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "error" if f.code == NOT_CHECKED else "warning",
            "message": {"text": f"{f.message} See {f.docs_url}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": Path(f.path).as_posix()},
                        "region": {"startLine": f.line, "startColumn": f.col},
                    }
                }
            ],
        }
        for f in findings
    ]
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "implicit-io-check",
                        "version": __version__,
                        "informationUri": page_url("guides/review-check.html"),
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


FORMATS = {"text": as_text, "github": as_github, "sarif": as_sarif}


# endregion formats


# region main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="implicit-io-check",
        description="Report implicit-I/O hotspots (rules IO104-IO106, IO201, IO204). "
        "Exit status: 0 clean, 1 findings, 2 usage error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    parser.add_argument("--docs-url", help="base URL of the rule pages")
    parser.add_argument(
        "--diff", metavar="REF", help="report only lines changed since git ref REF"
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--version", action="version", version=__version__)
    arguments = parser.parse_args(argv)  # exits 2 on a usage error
    try:
        changed = changed_lines(arguments.diff) if arguments.diff else None
        findings = [
            finding
            for path in python_files(arguments.paths)
            for finding in check_file(path, docs_base_url=arguments.docs_url)
            if changed is None or in_diff(finding, changed)
        ]
    except UsageError as error:
        print(f"implicit-io-check: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(FORMATS[arguments.format](findings))
    if findings:
        skipped = sum(f.code == NOT_CHECKED for f in findings)
        note = f" ({skipped} file(s) not checked, {NOT_CHECKED})" if skipped else ""
        print(f"Found {len(findings)} finding(s){note}.", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
# endregion main
