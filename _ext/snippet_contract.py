"""The snippet contract, checked on every build and by tests/test_site.py.

1. No page types Python in: Python comes from ``literalinclude`` of ``snippets/``
   (examples) or of the toolkit package ``implicit_io/`` (product code), by region
   marker (``# region NAME`` … ``# endregion NAME``) or ``:pyobject:``.
2. Every include names a file, region and object that exist.
3. Every region and every public top-level object in ``snippets/`` is on a page;
   every region in ``implicit_io/`` is (its other objects are API, not examples).
4. Every ``snippets/X.py`` has a ``test_X.py`` under ``tests/``; every public
   ``implicit_io/X.py`` has ``test_X.py`` or ``test_implicit_io_X.py`` there.
   That test module imports the module and uses every name it shows (so no shown
   code goes untested).

Pages are parsed with markdown-it-py configured as MyST configures it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser
from sphinx.util import logging

from .yaml_loading import safe_load

PYTHON_LANGUAGES = {"python", "py", "python3", "py3", "pycon", "ipython", "ipython3"}
CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell"}
LINE_NUMBER_OPTIONS = {"lines", "start-line", "end-line"}
REGION_MARKER = re.compile(r"^\s*# (region|endregion) (\S+)\s*$")
RST_PYTHON_BLOCK = re.compile(
    r"^\s*\.\. (code-block|code|sourcecode)::\s*(python|py|pycon)\b", re.M
)
PAGE_GLOBS = ("index.md", "guides/**/*.md")
#: Folders pages may show code from: page examples, and the toolkit package.
EXAMPLES, PACKAGE = "snippets", "implicit_io"
#: This checker's own text: part of every stored scan's key, read once.
_CHECKER = Path(__file__).read_text(encoding="utf-8")


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


#: The MyST syntax extensions that change where a page's blocks are (conf.py enables
#: them; substitutions do not move blocks).
BLOCK_EXTENSIONS = frozenset({"colon_fence", "deflist", "fieldlist"})


def markdown_parser(extensions: Iterable[str] = BLOCK_EXTENSIONS):
    """MyST's own Markdown parser, to find a page's blocks as the build reads them."""
    config = MdParserConfig(enable_extensions=set(extensions) & BLOCK_EXTENSIONS)
    return create_md_parser(config, RendererHTML)


def _split_options(body: str) -> tuple[dict[str, str], int]:
    """MyST directive options: a ``---`` YAML block or leading ``:key: value`` lines."""
    lines = body.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line == "---"), 0)
        options = safe_load("\n".join(lines[1:end])) or {}
        return {str(k): str(v) for k, v in options.items()}, end + 1
    options: dict[str, str] = {}
    consumed = 0
    for line in lines:
        match = re.match(r"^:([\w-]+):\s*(.*)$", line)
        if not match:
            break
        options[match[1]] = match[2].strip().strip("\"'")
        consumed += 1
    return options, consumed


def _region_of(options: dict[str, str]) -> tuple[str | None, str | None]:
    """The region an include names, or an error message."""
    start, end = options.get("start-after"), options.get("end-before")
    if start is None and end is None:
        return None, None
    start_match = re.fullmatch(r"# region (\S+)", start or "")
    end_match = re.fullmatch(r"# endregion (\S+)", end or "")
    if not (start_match and end_match and start_match[1] == end_match[1]):
        return None, (
            "include a region with ':start-after: # region NAME' and "
            "':end-before: # endregion NAME' (the same NAME)"
        )
    return start_match[1], None


def _front_matter(page: Path) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", page.read_text(encoding="utf-8"), re.S)
    loaded = safe_load(match[1]) if match else None
    return loaded if isinstance(loaded, dict) else {}


def scan_page(root: Path, page: Path) -> tuple[list[Include], list[Problem]]:
    rel = page.relative_to(root).as_posix()
    includes: list[Include] = []
    problems: list[Problem] = []
    parser = markdown_parser()
    front_matter: dict[str, dict] = {}  # read once, by the first rule-example

    def walk(text: str, offset: int) -> None:
        for token in parser.parse(text):
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
                problems.append(
                    Problem(
                        rel,
                        line,
                        (
                            "Python typed into the page. Move it into a snippets/ module "
                            "between '# region NAME' and '# endregion NAME', cover it with a "
                            "test, and show it with a {literalinclude}."
                        ),
                    )
                )
            elif name == "eval-rst" and RST_PYTHON_BLOCK.search(token.content):
                problems.append(
                    Problem(
                        rel,
                        line,
                        (
                            "Python typed into an eval-rst block. Move it into snippets/ "
                            "and show it with a {literalinclude}."
                        ),
                    )
                )
            elif name == "rule-example":
                # Shows the snippet function its rule's front matter names there.
                if "page" not in front_matter:
                    front_matter["page"] = _front_matter(page)
                rule = front_matter["page"].get("rule")
                target = rule.get(argument) if isinstance(rule, dict) else None
                if isinstance(target, str) and ":" in target:
                    module, function = target.split(":", 1)
                    includes.append(
                        Include(rel, line, f"snippets/{module}.py", function, None)
                    )
            elif name == "literalinclude":
                include, problem = _parse_include(
                    root, page, rel, line, argument, options
                )
                if problem:
                    problems.append(problem)
                elif include:
                    includes.append(include)
            elif name is not None and name not in CODE_DIRECTIVES:
                # Directive bodies (admonitions, tabs, ...) are Markdown themselves.
                body = "\n".join(token.content.splitlines()[consumed:])
                walk(body, offset + token.map[0] + 1 + consumed)

    walk(page.read_text(encoding="utf-8"), 0)
    return includes, problems


def _parse_include(root, page, rel, line, argument, options):
    target = (
        (root / argument.lstrip("/"))
        if argument.startswith("/")
        else (page.parent / argument)
    )
    target = target.resolve()
    allowed = [(root / folder).resolve() for folder in (EXAMPLES, PACKAGE)]
    if not any(folder in target.parents for folder in allowed):
        return None, Problem(
            rel,
            line,
            (
                f"literalinclude of {argument!r}: pages show code from {EXAMPLES}/ "
                f"(examples) and {PACKAGE}/ (the toolkit) only."
            ),
        )
    snippet = target.relative_to(root.resolve()).as_posix()
    if not target.is_file():
        return None, Problem(
            rel,
            line,
            (
                f"literalinclude of {argument!r}: {snippet} does not exist. Create it, "
                "or fix the path (it is relative to the page)."
            ),
        )
    numbered = LINE_NUMBER_OPTIONS & options.keys()
    if numbered:
        return None, Problem(
            rel,
            line,
            (
                f"literalinclude of {snippet} selects lines by number "
                f"(:{sorted(numbered)[0]}:). Line numbers drift; use a region marker "
                "or :pyobject:."
            ),
        )
    region, message = _region_of(options)
    if message:
        return None, Problem(rel, line, f"literalinclude of {snippet}: {message}.")
    pyobject = options.get("pyobject")
    if region is None and pyobject is None:
        return None, Problem(
            rel,
            line,
            (
                f"literalinclude of {snippet} shows the whole file. Show a region "
                "(':start-after: # region NAME', ':end-before: # endregion NAME') "
                "or a ':pyobject:'."
            ),
        )
    return Include(rel, line, snippet, pyobject, region), None


def _defined_names(nodes: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def scan_snippet(root: Path, path: Path) -> tuple[Snippet, list[Problem]]:
    rel = path.relative_to(root).as_posix()
    source = path.read_text(encoding="utf-8")
    snippet = Snippet(rel)
    problems: list[Problem] = []
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as error:
        return snippet, [
            Problem(rel, error.lineno or 1, f"does not parse: {error.msg}")
        ]

    top_level = [
        n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    for node in top_level:
        is_object = isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        )
        if is_object and not node.name.startswith("_"):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            snippet.objects[node.name] = (start, node.end_lineno or node.lineno)

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
                    (f"'# endregion {name}' has no '# region {name}' before it."),
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
                (f"region {name!r} is never closed: add '# endregion {name}'."),
            )
        )
    for name in snippet.regions:
        clashes = [
            other
            for other in snippet.regions
            if other != name and other.startswith(name)
        ]
        if clashes:
            problems.append(
                Problem(
                    rel,
                    snippet.regions[name][0],
                    (
                        f"region name {name!r} is a prefix of {clashes[0]!r}; a literalinclude "
                        "of one could match the other. Rename one of them."
                    ),
                )
            )
    return snippet, problems


def _used_names(test_path: Path) -> tuple[set[str], set[str]]:
    """Names a test module uses, and the snippet modules it imports."""
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


def _paired_test(root: Path, package: str, stem: str) -> Path:
    """``tests/test_X.py``; for a package module also ``tests/test_implicit_io_X.py``."""
    names = [f"test_{stem}.py"]
    if package == PACKAGE:
        names.append(f"test_{PACKAGE}_{stem}.py")
    for name in names:
        found = sorted((root / "tests").rglob(name))
        if found:
            return found[0]
    return root / "tests" / names[0]


def _includable(root: Path) -> list[str]:
    """Which files pages may include exist: examples, their data, the package."""
    return sorted(
        p.relative_to(root).as_posix()
        for folder in (EXAMPLES, PACKAGE)
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def check_project(root: Path) -> list[Problem]:
    """Every problem of the project."""
    return _check(Path(root))


def _check(root: Path) -> list[Problem]:
    problems: list[Problem] = []
    includes: list[Include] = []
    pages = sorted({p for pattern in PAGE_GLOBS for p in root.glob(pattern)})
    for page in pages:
        found, page_problems = scan_page(root, page)
        includes += found
        problems += page_problems

    snippets: dict[str, Snippet] = {}
    sources = [*(root / EXAMPLES).glob("*.py"), *(root / PACKAGE).glob("*.py")]
    for path in sorted(sources):
        if path.name.startswith("_"):  # __init__, and private package modules
            continue
        snippet, snippet_problems = scan_snippet(root, path)
        snippets[snippet.path] = snippet
        problems += snippet_problems

    shown_regions: set[tuple[str, str]] = set()
    shown_objects: set[tuple[str, str]] = set()
    for include in includes:
        snippet = snippets.get(include.snippet)
        if snippet is None:
            continue
        if include.region is not None:
            if include.region not in snippet.regions:
                problems.append(
                    Problem(
                        include.page,
                        include.line,
                        (
                            f"{include.snippet} has no region {include.region!r}. Add "
                            f"'# region {include.region}' … '# endregion {include.region}' "
                            f"to it, or use one of: {', '.join(sorted(snippet.regions)) or 'none'}."
                        ),
                    )
                )
            shown_regions.add((include.snippet, include.region))
        if include.pyobject is not None:
            top = include.pyobject.split(".")[0]
            if top not in snippet.objects:
                problems.append(
                    Problem(
                        include.page,
                        include.line,
                        (
                            f"{include.snippet} defines no public top-level {top!r} for "
                            ":pyobject:. Define it, or fix the name."
                        ),
                    )
                )
            if "." not in include.pyobject:
                shown_objects.add((include.snippet, include.pyobject))

    for path, snippet in snippets.items():
        stem = Path(path).stem
        package = Path(path).parent.name
        test_path = _paired_test(root, package, stem)
        if not test_path.is_file():
            problems.append(
                Problem(
                    path,
                    1,
                    (
                        f"has no test module: create test_{stem}.py that runs its examples, in the tests/ folder of its family (tests/examples/ for a page's examples)."
                    ),
                )
            )
            used, imported = set(), set()
        else:
            used, imported = _used_names(test_path)
        for name, (start, _) in snippet.regions.items():
            if (path, name) not in shown_regions:
                problems.append(
                    Problem(
                        path,
                        start,
                        (
                            f"region {name!r} is on no page. Include it in guides/ with "
                            "{literalinclude}, or delete it."
                        ),
                    )
                )
            untested = sorted(snippet.names_by_region[name] - used)
            if test_path.is_file() and untested:
                problems.append(
                    Problem(
                        path,
                        start,
                        (
                            f"region {name!r} shows {', '.join(untested)}, which "
                            f"{test_path.relative_to(root)} never uses. Exercise it in a test."
                        ),
                    )
                )
            elif test_path.is_file() and f"{package}.{stem}" not in imported:
                problems.append(
                    Problem(
                        path,
                        start,
                        (
                            f"{test_path.relative_to(root)} does not import "
                            f"{package}.{stem}."
                        ),
                    )
                )
        if package == PACKAGE:
            continue  # the package's other objects are its API, tested but not shown
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
                        (
                            f"{name!r} is on no page. Show it with {{literalinclude}} "
                            f":pyobject: {name}, make it private (_{name}), or delete it."
                        ),
                    )
                )
            if test_path.is_file() and name not in used:
                problems.append(
                    Problem(
                        path,
                        start,
                        (
                            f"{name!r} is never used by {test_path.relative_to(root)}. Exercise it in "
                            "a test."
                        ),
                    )
                )
    return problems


def _check_on_build(app, env) -> None:
    logger = logging.getLogger(__name__)
    for problem in check_project(Path(app.srcdir)):
        logger.warning(
            "snippet contract: %s", problem, type="snippets", subtype="contract"
        )


def _trim_included_code(app, doctree) -> None:
    """A region ends where its code does: no trailing blank lines (PEP 8 puts two
    between a function and the ``# endregion`` marker), so no block ends in a gap."""
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if block.get("source") and text != text.rstrip("\n"):
            block.children = [nodes.Text(text.rstrip("\n"))]
            block.rawsource = block.children[0].astext()


def setup(app):
    app.connect("env-updated", _check_on_build)
    app.connect("doctree-read", _trim_included_code)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
