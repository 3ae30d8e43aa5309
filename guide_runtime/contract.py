"""The snippet contract: what pages may show, and that every shown example is tested.

Checked by every build (_ext/snippet_contract.py, which scans each page as it is
read) and by the suite (tests/site/test_site.py, with :func:`check_project`).

1. No page types Python in: Python comes from ``literalinclude`` of ``snippets/``
   (examples) or of the toolkit package ``implicit_io/`` (product code), by region
   marker (``# region NAME`` … ``# endregion NAME``) or ``:pyobject:``.
2. Every include names a file, region and object that exist.
3. Every region and every public top-level object in ``snippets/`` is on a page;
   every region in ``implicit_io/`` is (its other objects are API, not examples).
4. Every ``snippets/X.py`` has a ``test_X.py`` under ``tests/``; every public
   ``implicit_io/X.py`` has ``test_X.py`` or ``test_implicit_io_X.py`` there. That
   test module imports the module and uses every name it shows (so no shown code
   goes untested).

Pages are parsed with MyST's own Markdown parser.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from yaml import safe_load

from guide_runtime.pages import (
    FrontMatterError,
    front_matter,
    markdown_parser,
    site_pages,
)

PYTHON_LANGUAGES = {"python", "py", "python3", "py3", "pycon", "ipython", "ipython3"}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell"}
LINE_NUMBER_OPTIONS = {"lines", "start-line", "end-line"}
REGION_MARKER = re.compile(r"^\s*# (region|endregion) (\S+)\s*$")
RST_PYTHON_BLOCK = re.compile(
    r"^\s*\.\. (code-block|code|sourcecode)::\s*(python|py|pycon)\b", re.M
)
#: Folders pages may show code from: page examples, and the toolkit package.
EXAMPLES, PACKAGE = "snippets", "implicit_io"
TYPED_PYTHON = (
    "Python typed into the page. Move it into a snippets/ module between '# region "
    "NAME' and '# endregion NAME', cover it with a test, and show it with a "
    "{literalinclude}."
)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Include:
    page: str
    line: int
    snippet: str  # path relative to the project root, e.g. "snippets/models.py"
    pyobject: str | None
    region: str | None


@dataclass
class Snippet:
    path: str
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)
    names_by_region: dict[str, set[str]] = field(default_factory=dict)


PageScan = tuple[list[Include], list[Problem]]


def _split_options(body: str) -> tuple[dict[str, str], int]:
    """MyST directive options: a ``---`` YAML block or leading ``:key: value`` lines."""
    lines = body.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line == "---"), 0)
        options = safe_load("\n".join(lines[1:end])) or {}
        return {str(k): str(v) for k, v in options.items()}, end + 1
    options: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^:([\w-]+):\s*(.*)$", line)
        if not match:
            break
        options[match[1]] = match[2].strip().strip("\"'")
    return options, len(options)


def scan_page(root: Path, page: Path) -> PageScan:
    """The includes of a page, and its problems."""
    rel = page.relative_to(root).as_posix()
    includes: list[Include] = []
    problems: list[Problem] = []

    def walk(text: str, offset: int) -> None:
        for token in markdown_parser().parse(text):
            if token.type not in ("fence", "colon_fence") or token.map is None:
                continue
            line = offset + token.map[0] + 1
            info = token.info.strip()
            match = re.match(r"^\{([\w:-]+)\}\s*(.*)$", info)
            name, argument = (match[1], match[2].strip()) if match else (None, "")
            language = (argument if name else info).split(" ")[0].lower()
            options, consumed = _split_options(token.content) if name else ({}, 0)
            if (
                name is None or name in CODE_DIRECTIVES
            ) and language in PYTHON_LANGUAGES:
                problems.append(Problem(rel, line, TYPED_PYTHON))
            elif name == "eval-rst" and RST_PYTHON_BLOCK.search(token.content):
                problems.append(
                    Problem(
                        rel, line, TYPED_PYTHON.replace("the page", "an eval-rst block")
                    )
                )
            elif name == "rule-example":
                # Shows the snippet function its rule's front matter names there.
                try:
                    rule = front_matter(root, page).rule
                except FrontMatterError:
                    rule = None  # page_meta reports it
                target = getattr(rule, argument, None) if rule else None
                if isinstance(target, str):
                    module, function = target.split(":", 1)
                    includes.append(
                        Include(rel, line, f"snippets/{module}.py", function, None)
                    )
            elif name == "literalinclude":
                found = _include(root, page, rel, line, argument, options)
                (problems if isinstance(found, Problem) else includes).append(found)
            elif name is not None and name not in CODE_DIRECTIVES:
                # Directive bodies (admonitions, tabs, ...) are Markdown themselves.
                body = "\n".join(token.content.splitlines()[consumed:])
                walk(body, offset + token.map[0] + 1 + consumed)

    walk(page.read_text(encoding="utf-8"), 0)
    return includes, problems


def _include(root, page, rel, line, argument, options) -> Include | Problem:
    target = (
        root / argument.lstrip("/")
        if argument.startswith("/")
        else page.parent / argument
    ).resolve()
    allowed = [(root / folder).resolve() for folder in (EXAMPLES, PACKAGE)]
    if not any(folder in target.parents for folder in allowed):
        return Problem(
            rel,
            line,
            f"literalinclude of {argument!r}: pages show code from {EXAMPLES}/ "
            f"(examples) and {PACKAGE}/ (the toolkit) only.",
        )
    snippet = target.relative_to(root.resolve()).as_posix()
    if not target.is_file():
        return Problem(
            rel,
            line,
            f"literalinclude of {argument!r}: {snippet} does not exist. Create it, "
            "or fix the path (it is relative to the page).",
        )
    if numbered := LINE_NUMBER_OPTIONS & options.keys():
        return Problem(
            rel,
            line,
            f"literalinclude of {snippet} selects lines by number "
            f"(:{sorted(numbered)[0]}:). Line numbers drift; use a region marker "
            "or :pyobject:.",
        )
    start, end = options.get("start-after"), options.get("end-before")
    region = None
    if start is not None or end is not None:
        start_match = re.fullmatch(r"# region (\S+)", start or "")
        end_match = re.fullmatch(r"# endregion (\S+)", end or "")
        if not (start_match and end_match and start_match[1] == end_match[1]):
            return Problem(
                rel,
                line,
                f"literalinclude of {snippet}: include a region with ':start-after: # "
                "region NAME' and ':end-before: # endregion NAME' (the same NAME).",
            )
        region = start_match[1]
    pyobject = options.get("pyobject")
    if region is None and pyobject is None:
        return Problem(
            rel,
            line,
            f"literalinclude of {snippet} shows the whole file. Show a region "
            "(':start-after: # region NAME', ':end-before: # endregion NAME') "
            "or a ':pyobject:'.",
        )
    return Include(rel, line, snippet, pyobject, region)


def _defined_names(statements: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def scan_snippet(root: Path, path: Path) -> tuple[Snippet, list[Problem]]:
    """A module's regions and public objects, and problems with its markers."""
    rel = path.relative_to(root).as_posix()
    source = path.read_text(encoding="utf-8")
    snippet = Snippet(rel)
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as error:
        return snippet, [
            Problem(rel, error.lineno or 1, f"does not parse: {error.msg}")
        ]
    top_level = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    for node in top_level:
        named = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if named and not node.name.startswith("_"):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            snippet.objects[node.name] = (start, node.end_lineno or node.lineno)
    problems: list[Problem] = []
    open_regions: dict[str, int] = {}
    for number, text in enumerate(source.splitlines(), start=1):
        marker = REGION_MARKER.match(text)
        if not marker:
            continue
        kind, name = marker.groups()
        if kind == "region":
            if name in open_regions or name in snippet.regions:
                problems.append(
                    Problem(rel, number, f"region {name!r} is defined twice.")
                )
            open_regions[name] = number
        elif name not in open_regions:
            problems.append(
                Problem(
                    rel,
                    number,
                    f"'# endregion {name}' has no '# region {name}' before it.",
                )
            )
        else:
            start = open_regions.pop(name)
            snippet.regions[name] = (start, number)
            inside = [n for n in top_level if start < n.lineno < number]
            snippet.names_by_region[name] = _defined_names(inside)
    for name, number in open_regions.items():
        problems.append(
            Problem(
                rel,
                number,
                f"region {name!r} is never closed: add '# endregion {name}'.",
            )
        )
    for name, (start, _) in snippet.regions.items():
        clashes = [o for o in snippet.regions if o != name and o.startswith(name)]
        if clashes:
            problems.append(
                Problem(
                    rel,
                    start,
                    f"region name {name!r} is a prefix of {clashes[0]!r}; a "
                    "literalinclude of one could match the other. Rename one of them.",
                )
            )
    return snippet, problems


def used_names(test_path: Path) -> tuple[set[str], set[str]]:
    """Names a test module uses, and the modules it imports."""
    tree = ast.parse(test_path.read_text(encoding="utf-8"))
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            names |= {alias.name for alias in node.names}
            if node.module in (EXAMPLES, PACKAGE):
                modules |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # "module:function" strings handed to the capture harness.
            names.add(node.value.rpartition(":")[2])
    return names, modules


def _sources(root: Path) -> list[Path]:
    """The modules pages may show; ``_private`` ones (and ``__init__``) are not."""
    found = [*(root / EXAMPLES).glob("*.py"), *(root / PACKAGE).glob("*.py")]
    return sorted(path for path in found if not path.name.startswith("_"))


class Scans:
    """Scans of modules, each redone only when its file changes (by stamp)."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str], tuple[tuple[int, int], object]] = {}

    def get(self, kind: str, path: Path, scan):
        status = path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
        kept = self._by_path.get((kind, str(path)))
        if kept is None or kept[0] != stamp:
            kept = self._by_path[(kind, str(path))] = (stamp, scan())
        return kept[1]


def check(
    root: Path, page_scans: list[PageScan], scans: Scans | None = None
) -> list[Problem]:
    """Every problem, given each page's scan."""
    scans = scans or Scans()
    problems = [problem for _, found in page_scans for problem in found]
    includes = [include for found, _ in page_scans for include in found]
    snippets: dict[str, Snippet] = {}
    for path in _sources(root):
        snippet, found = scans.get("module", path, lambda p=path: scan_snippet(root, p))
        snippets[snippet.path] = snippet
        problems += found
    shown_regions: set[tuple[str, str]] = set()
    shown_objects: set[tuple[str, str]] = set()
    for include in includes:
        snippet = snippets.get(include.snippet)
        if snippet is None:
            continue
        if include.region is not None:
            shown_regions.add((include.snippet, include.region))
            if include.region not in snippet.regions:
                known = ", ".join(sorted(snippet.regions)) or "none"
                problems.append(
                    Problem(
                        include.page,
                        include.line,
                        f"{include.snippet} has no region {include.region!r}. Add "
                        f"'# region {include.region}' … '# endregion {include.region}' "
                        f"to it, or use one of: {known}.",
                    )
                )
        if include.pyobject is not None:
            top = include.pyobject.split(".")[0]
            if top not in snippet.objects:
                problems.append(
                    Problem(
                        include.page,
                        include.line,
                        f"{include.snippet} defines no public top-level {top!r} for "
                        ":pyobject:. Define it, or fix the name.",
                    )
                )
            if "." not in include.pyobject:
                shown_objects.add((include.snippet, include.pyobject))
    tests = {
        p.name: p for p in sorted((root / "tests").rglob("test_*.py"), reverse=True)
    }
    for path, snippet in snippets.items():
        problems += _check_module(
            root, path, snippet, tests, scans, shown_regions, shown_objects
        )
    return problems


def _check_module(root, path, snippet, tests, scans, shown_regions, shown_objects):
    stem, package = Path(path).stem, Path(path).parent.name
    names = [f"test_{stem}.py"] + (
        [f"test_{PACKAGE}_{stem}.py"] if package == PACKAGE else []
    )
    test_path = next((tests[name] for name in names if name in tests), None)
    problems = []
    if test_path is None:
        problems.append(
            Problem(
                path,
                1,
                f"has no test module: create test_{stem}.py that runs its examples, "
                "in the tests/ folder of its family (tests/examples/ for a page's "
                "examples).",
            )
        )
        used, imported = set(), set()
    else:
        used, imported = scans.get("test", test_path, lambda: used_names(test_path))
        test_path = test_path.relative_to(root)
    for name, (start, _) in snippet.regions.items():
        if (path, name) not in shown_regions:
            problems.append(
                Problem(
                    path,
                    start,
                    f"region {name!r} is on no page. Include it in guides/ with "
                    "{literalinclude}, or delete it.",
                )
            )
        untested = sorted(snippet.names_by_region[name] - used)
        if test_path and untested:
            problems.append(
                Problem(
                    path,
                    start,
                    f"region {name!r} shows {', '.join(untested)}, which {test_path} "
                    "never uses. Exercise it in a test.",
                )
            )
        elif test_path and f"{package}.{stem}" not in imported:
            problems.append(
                Problem(path, start, f"{test_path} does not import {package}.{stem}.")
            )
    if package == PACKAGE:
        return problems  # the package's other objects are its API, tested but not shown
    for name, (start, end) in snippet.objects.items():
        in_shown_region = any(
            (path, region) in shown_regions and r_start < start and end < r_end
            for region, (r_start, r_end) in snippet.regions.items()
        )
        if (path, name) not in shown_objects and not in_shown_region:
            problems.append(
                Problem(
                    path,
                    start,
                    f"{name!r} is on no page. Show it with {{literalinclude}} "
                    f":pyobject: {name}, make it private (_{name}), or delete it.",
                )
            )
        if test_path and name not in used:
            problems.append(
                Problem(
                    path,
                    start,
                    f"{name!r} is never used by {test_path}. Exercise it in a test.",
                )
            )
    return problems


def check_project(root: Path) -> list[Problem]:
    """Every problem of the project, every page scanned now."""
    root = Path(root)
    return check(root, [scan_page(root, page) for page in site_pages(root)])
