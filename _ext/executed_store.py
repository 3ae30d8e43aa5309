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
import fcntl
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
HARNESS = "guide_runtime.capture"


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
    return cached_run(
        env.srcdir, type(directive), targets, request, compute, env.note_dependency
    )


def cached_run(
    srcdir: str | Path,
    directive_class: type[SphinxDirective],
    targets: Iterable[str],
    request: dict[str, Any],
    compute: Callable[[], Any],
    note_dependency: Callable[[str], None] | None = None,
) -> Any:
    """What :func:`cached` stores for a ``directive_class`` directive with this
    request; without the directive, for work done before its page is read
    (:func:`store_ahead`).

    One process at a time computes a missing run: another that needs it meanwhile
    (a page's reader, while a process working ahead runs it) waits for its result
    instead of running it again.
    """
    root = Path(srcdir).resolve()
    modules = {f"snippets.{target.partition(':')[0]}" for target in targets}
    directive_file = Path(inspect.getfile(directive_class)).resolve()
    files = [
        *project_files(root, (*sorted(modules), HARNESS)),
        directive_file,
        Path(__file__).resolve(),
    ]
    for path in files if note_dependency else ():
        note_dependency(str(path))
    # By class, not by name: a rule page's example reuses the captured-run of a guide.
    request = {"run": directive_class.__name__, **request}
    entry = store_dir(srcdir) / f"{key(root, request, files)}.json"
    if entry.is_file():
        return json.loads(entry.read_text(encoding="utf-8"))["result"]
    locks = entry.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{entry.stem}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
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


def _first_parallel_build(app) -> bool:
    # The pages to read are not listed yet; a first build reads them all.
    return everything_runs_in_parallel(
        app.parallel, ["(every page)"], built_marker(app.srcdir)
    )


def load_harness_before_forking(app) -> None:
    """In a first build every executed directive runs, in the processes Sphinx
    forks to read pages and in those working ahead: load the harness (and
    SQLAlchemy) once, here, before the forks, rather than once in each of them.
    Later builds leave it to the first run that needs it: a build that runs
    nothing never loads it."""
    if _first_parallel_build(app):
        importlib.import_module(HARNESS)


#: When work registered with store_ahead() runs in a first parallel build: the event
#: (and listener priority) that forks its process, and the one that awaits it.
PHASES = {
    # While the pages are read: forked once the builder is ready, so that it also
    # runs beside the rest of the main process's preparation; awaited before any
    # other env-updated listener reads what it stored.
    "reading": (("builder-inited", 900), ("env-updated", 100)),
    # While the pages are written: Sphinx's main process resolves them one after
    # another for the writer processes, which wait, so a CPU is free. Forked once
    # the heap is frozen (frozen_heap.py), awaited before extra pages are collected.
    "writing": (("write-started", 950), ("html-collect-pages", 100)),
}
#: Per build (by id of its app) and phase: the work registered, then its processes.
_ahead: dict[tuple[int, str], list[Callable[[], object]]] = {}
_running: dict[tuple[int, str], list[multiprocessing.process.BaseProcess]] = {}


def store_ahead(app, work: Callable[[], object], *, beside: str = "reading") -> None:
    """Register ``work``, which stores results with :func:`stored` that a later step
    of this build needs (call it from ``builder-inited``).

    In a first parallel build (see everything_runs_in_parallel), such results
    would be computed where nothing runs beside them: in the main process before
    reading or after the last page is written, or in the one reader process whose
    page needs them. There each work runs instead in a process of its own, beside
    the reading of the pages (``beside="reading"``, for a step once they are read)
    or beside their writing (``"writing"``, for pages collected after them); the
    later step finds its results stored, or, for a run (:func:`cached_run`), waits
    for it. Nothing depends on it: what it did not store, the step computes.
    """
    if beside not in PHASES:
        raise ValueError(f"store_ahead: beside must be one of {sorted(PHASES)}")
    _ahead.setdefault((id(app), beside), []).append(work)


def _start_ahead(app, *event_args: object, phase: str) -> None:
    work = _ahead.pop((id(app), phase), [])
    if work and _first_parallel_build(app):
        # A process for each: they run side by side, and beside the pages.
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=job, daemon=True) for job in work]
        for process in processes:
            process.start()
        _running[(id(app), phase)] = processes


#: Longer than the work takes anywhere (seconds here); a process that has
#: not finished by then is stopped, and the later steps compute what it did not.
AHEAD_TIMEOUT = 300.0


def _wait_ahead(app, *event_args: object, phase: str) -> list:
    _ahead.pop((id(app), phase), None)  # registered, never started (no fork)
    for process in _running.pop((id(app), phase), []):
        process.join(AHEAD_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
    return []  # html-collect-pages: no pages of its own


def _connect_phases(app) -> None:
    for phase, ((start, start_priority), (wait, wait_priority)) in PHASES.items():
        app.connect(start, partial(_start_ahead, phase=phase), priority=start_priority)
        app.connect(wait, partial(_wait_ahead, phase=phase), priority=wait_priority)
        # A build that ends early (or a builder without that event) awaits it here.
        app.connect("build-finished", partial(_wait_ahead, phase=phase), priority=100)


def setup(app):
    # Sphinx re-reads every page when an "env" setting changes, and only then
    # would an unchanged page run its snippets again under the new environment.
    app.add_config_value("executed_environment", fingerprint(), "env")
    _connect_phases(app)
    # Before the work ahead is forked (priority 900): it measures tables too.
    app.connect("builder-inited", load_harness_before_forking, priority=800)
    app.connect("build-finished", _mark_built)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
