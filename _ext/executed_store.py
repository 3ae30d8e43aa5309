"""Results of code run at build time, stored by content under ``_build/.executed/``.

``captured-run``, ``round-trips`` and ``generated-table`` run snippet functions while
a page is read. What such a run shows depends only on:

- the request (the directive and its arguments),
- the source of the modules it names, of every module under the project root that
  they import, directly or not, and of the harness that runs them,
- the directive's own module (how it turns a run into data),
- the installed distributions (SQLAlchemy, the drivers, ...), the SQLite library,
  Python, the database URL (``GUIDE_DATABASE_URL``) and the published address the
  toolkit cites (``IMPLICIT_IO_DOCS_URL``).

:func:`cached` hashes all of that into a key. A build reuses the stored JSON when the
key matches and runs the code otherwise; the page is re-read whenever one of those
files changes, so editing a snippet re-runs exactly what imports it, and editing
prose re-runs nothing. ``make clean`` (removing ``_build``) empties the store. The
variable ``GUIDE_EXECUTED_STORE`` names another folder: the test suite points its
copies of the site at the checkout's store. Imports are found by reading the source
(``import`` statements anywhere in a module), so a module loaded by a computed name
is not tracked. The three directives call :func:`cached` and load this module as an
extension, whose one setting makes Sphinx re-read every page when anything outside
the project changes (a package upgrade, another database URL).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable
from functools import cache, partial
from pathlib import Path
from typing import Any

from sphinx.util.docutils import SphinxDirective

STORE_VARIABLE = "GUIDE_EXECUTED_STORE"
#: The harness's variable (tests/harness.py), read here without importing it, so a
#: build that finds every result stored never loads SQLAlchemy.
DATABASE_URL_VARIABLE = "GUIDE_DATABASE_URL"
#: Bump to drop every stored result when the stored format changes.
FORMAT = 1
#: This module's own text: what it stores depends on how it computes it.
_SOURCE = Path(__file__).read_text(encoding="utf-8")
#: Every run goes through the harness: it and what it imports are in every key.
HARNESS = "tests.harness"


def store_dir(srcdir: str | Path) -> Path:
    return Path(os.environ.get(STORE_VARIABLE) or Path(srcdir, "_build", ".executed"))


def _search_roots(root: Path) -> tuple[Path, ...]:
    """Where project modules are imported from: sys.path entries inside the root."""
    roots = [root]
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        inside = path != root and path.is_relative_to(root)
        if inside and "site-packages" not in path.parts:
            roots.append(path)
    return tuple(roots)


@cache
def _module_file(roots: tuple[Path, ...], name: str) -> Path | None:
    relative = Path(*name.split("."))
    for base in roots:
        for candidate in (base / relative / "__init__.py", base / f"{relative}.py"):
            if candidate.is_file():
                return candidate
    return None


def _imported_names(data: bytes, filename: str) -> list[str]:
    """The module names a file's imports could load."""
    names: list[str] = []
    for node in ast.walk(ast.parse(data, filename=filename)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved by the caller from the file's place
                base = "." * node.level + (node.module or "")
                joint = "." if node.module else ""
                names += [base, *(f"{base}{joint}{alias.name}" for alias in node.names)]
                continue
            module = node.module or ""
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


@cache
def _read(
    root: Path, path: Path, stamp: tuple[int, int]
) -> tuple[str, tuple[str, ...]]:
    """A file's hash and the module names its imports could load (by stamp).

    Parsing is the slow part: its result is stored by the file's hash.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    material = {"check": "imports", "sha256": digest, "by": _SOURCE}
    names = stored(root, material, partial(_imported_names, data, str(path)))
    return digest, tuple(names)


def _file_facts(root: Path, path: Path) -> tuple[str, tuple[str, ...]]:
    status = path.stat()
    return _read(root, path, (status.st_mtime_ns, status.st_size))


def _absolute(name: str, path: Path, roots: tuple[Path, ...]) -> str:
    """``name`` as an absolute module name, resolving a leading dot from ``path``."""
    if not name.startswith("."):
        return name
    level = len(name) - len(name.lstrip("."))
    base = max((r for r in roots if path.is_relative_to(r)), key=lambda r: len(r.parts))
    package = list(path.relative_to(base).with_suffix("").parts)
    package = package[:-1]  # the module itself, or the __init__ of the package
    package = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*package, name.lstrip(".")]).strip(".")


@cache  # within one build the sources do not change
def project_files(root: Path, modules: tuple[str, ...]) -> list[Path]:
    """The files of ``modules`` and of every module under ``root`` they import."""
    roots = _search_roots(root)
    pending, found = list(modules), {}
    while pending:
        name = pending.pop()
        parts = name.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        for end in range(1, len(parts) + 1):
            path = _module_file(roots, ".".join(parts[:end]))
            if path is None or path in found:
                continue
            found[path] = True
            _, imports = _file_facts(root, path)
            pending += [_absolute(i, path, roots) for i in imports]
    return sorted(found)


@cache
def environment() -> dict[str, Any]:
    """What outside the project can change a run's output.

    Every installed distribution counts, by the name of its metadata folder
    (``SQLAlchemy-2.1.9.dist-info``): reading folder names is fast, and the
    name changes with the version.
    """
    installed = {
        entry.name
        for folder in sys.path
        if folder and Path(folder).is_dir()
        for entry in Path(folder).iterdir()
        if entry.suffix in (".dist-info", ".egg-info")
    }
    return {
        "python": sys.version,
        "sqlite": sqlite3.sqlite_version,
        "database": os.environ.get(DATABASE_URL_VARIABLE, ""),
        # The toolkit's messages cite rule pages at the published address.
        "docs_url": os.environ.get("IMPLICIT_IO_DOCS_URL", ""),
        "distributions": sorted(installed),
    }


def fingerprint() -> str:
    return hashlib.sha256(json.dumps(environment()).encode()).hexdigest()


def _shown(root: Path, path: Path) -> str:
    """A path the same in every copy of the project."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def key(root: Path, request: dict[str, Any], files: list[Path]) -> str:
    fingerprint = {
        "format": FORMAT,
        "request": request,
        "files": [(_shown(root, p), _file_facts(root, p)[0]) for p in files],
        "environment": environment(),
    }
    encoded = json.dumps(fingerprint, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def cached(
    directive: SphinxDirective,
    targets: Iterable[str],
    request: dict[str, Any],
    compute: Callable[[], Any],
) -> Any:
    """The stored result of ``compute`` for this request, else computed and stored.

    ``targets`` are the ``module:function`` names the run loads from ``snippets``;
    ``compute`` must return JSON data (lists, not tuples). The page depends on
    every file in the key, so Sphinx re-reads it when one changes.
    """
    env = directive.env
    root = Path(env.srcdir).resolve()
    modules = {f"snippets.{target.partition(':')[0]}" for target in targets}
    directive_file = Path(inspect.getfile(type(directive))).resolve()
    files = [
        *project_files(root, (*sorted(modules), HARNESS)),
        directive_file,
        Path(__file__).resolve(),
    ]
    for path in files:
        env.note_dependency(str(path))
    # By class, not by name: a rule page's example reuses the captured-run of a guide.
    request = {"run": type(directive).__name__, **request}
    entry = store_dir(env.srcdir) / f"{key(root, request, files)}.json"
    return _stored(entry, request, compute)


def stored(srcdir: str | Path, material: dict[str, Any], compute: Callable[[], Any]):
    """``compute()``'s JSON result, stored under a hash of ``material``.

    For checks whose every input the caller can name (a page's text, ...).
    """
    encoded = json.dumps({"format": FORMAT, **material}, sort_keys=True).encode()
    entry = store_dir(srcdir) / f"{hashlib.sha256(encoded).hexdigest()}.json"
    return _stored(entry, {"check": material.get("check")}, compute)


def _stored(entry: Path, request: dict[str, Any], compute: Callable[[], Any]) -> Any:
    if entry.is_file():
        return json.loads(entry.read_text(encoding="utf-8"))["result"]
    result = compute()
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Written whole, then linked into place unless another process of a parallel
    # build stored the same run first: then its result wins, here too, so every
    # page showing this run shows the same output, in this build and later ones.
    with tempfile.NamedTemporaryFile(
        "w", dir=entry.parent, suffix=".tmp", delete=False, encoding="utf-8"
    ) as handle:
        json.dump({"request": request, "result": result}, handle, indent=1)
    try:
        os.link(handle.name, entry)
    except FileExistsError:
        pass
    finally:
        os.unlink(handle.name)
    return json.loads(entry.read_text(encoding="utf-8"))["result"]


def built_marker(srcdir: str | Path) -> Path:
    """Present once a build has finished in this environment with this store."""
    return store_dir(srcdir) / "built" / fingerprint()


def everything_runs_in_parallel(
    parallel: int, docnames: list[str], marker: Path
) -> bool:
    """Pages to read in forked processes, and no build yet in this environment: a
    first build, after ``make clean`` or an upgrade, where every executed directive
    runs (a store whose results were all made elsewhere is not told apart)."""
    return parallel > 1 and bool(docnames) and not marker.exists()


def _mark_built(app, exception: BaseException | None) -> None:
    if exception is None:
        marker = built_marker(app.srcdir)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def load_harness_before_parallel_reading(app, env, docnames: list[str]) -> None:
    """In a first build every executed directive runs, in the processes Sphinx
    forks to read pages: load the harness (and SQLAlchemy) once, here, before the
    fork, rather than once in each of them. Later builds leave it to the first run
    that needs it: a build that runs nothing never loads it."""
    if everything_runs_in_parallel(app.parallel, docnames, built_marker(app.srcdir)):
        importlib.import_module(HARNESS)


#: Per build (by id of its app): work registered with store_ahead(), then the
#: process running it.
_ahead: dict[int, list[Callable[[], object]]] = {}
_running: dict[int, multiprocessing.process.BaseProcess] = {}


def store_ahead(app, work: Callable[[], object]) -> None:
    """Register ``work``, which stores results with :func:`stored` that a later step
    of this build needs (call it from ``builder-inited``).

    In a first parallel build (see everything_runs_in_parallel), the main process
    would compute such results where nothing runs beside it: before reading, or
    after the last page is written. There the work runs instead in a second
    process, forked once the builder is ready and waited for once the pages are
    read; the later step finds its results stored. Nothing depends on it: what it did not
    store, the step computes.
    """
    _ahead.setdefault(id(app), []).append(work)


def _run_all(work: list[Callable[[], object]]) -> None:
    for job in work:
        job()


def _start_ahead(app) -> None:
    work = _ahead.pop(id(app), [])
    # The pages to read are not listed yet; a first build reads them all.
    if work and everything_runs_in_parallel(
        app.parallel, ["(every page)"], built_marker(app.srcdir)
    ):
        process = multiprocessing.get_context("fork").Process(
            target=_run_all, args=(work,), daemon=True
        )
        process.start()
        _running[id(app)] = process


#: Longer than the work takes anywhere (about a second here); a process that has
#: not finished by then is stopped, and the later steps compute what it did not.
AHEAD_TIMEOUT = 300.0


def _wait_ahead(app, env) -> None:
    process = _running.pop(id(app), None)
    if process is not None:
        process.join(AHEAD_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()


def setup(app):
    # Sphinx re-reads every page when an "env" setting changes, and only then
    # would an unchanged page run its snippets again under the new environment.
    app.add_config_value("executed_environment", fingerprint(), "env")
    # Started as soon as the work is registered, so that it runs beside the rest of
    # the main process's preparation (loading the harness, below, among it).
    app.connect("builder-inited", _start_ahead, priority=900)
    app.connect("env-before-read-docs", load_harness_before_parallel_reading)
    # Before any other env-updated listener reads what the work stored.
    app.connect("env-updated", _wait_ahead, priority=100)
    app.connect("build-finished", _mark_built)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
