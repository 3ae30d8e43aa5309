"""Strict builds of small throwaway sites, run inside the test process.

The tests of the site's machinery (``_ext/``) build small sites: a page or two and
the extension under test. Starting Python, Sphinx and the extensions costs more
than building such a site, so these builds call ``sphinx-build``'s own entry point
(``sphinx.cmd.build.build_main``) here, with the strict flags ``make html`` uses.
One difference from a separate process, undone after each build:

- the build's ``conf.py`` may extend ``sys.path``: it is restored.

One process (``-j 1``): forking a test worker is not what a reader's build does,
and a site this small is read in one process anyway. The checkout's own site is
built in a subprocess, in parallel, as a reader builds it (``tests/plugins/site.py``);
the serial build it must equal runs here too (``tests/site/test_site.py``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sphinx.cmd.build import build_main

from guide_runtime.configurations import ROOT
from tests.plugins.site import STRICT_BUILD

EXTENSIONS = ROOT / "_ext"
#: What a copy of the checkout leaves out: outputs, caches, and every virtual
#: environment (``.venv``, ``.venv-sqlalchemy-2.0``, any folder with a pyvenv.cfg).
NOT_SOURCES = ("_build", ".git", "__pycache__", ".*_cache", ".venv*")


def small_conf(
    *extensions: str, keep_compiled_templates: bool = True, **settings: str
) -> str:
    """A ``conf.py`` loading ``extensions`` from this checkout's ``_ext/`` (and the
    project on the path, as the real conf.py puts it), with ``settings`` as
    ``name = repr(value)`` lines.

    Like the real site, it keeps the theme's compiled templates (template_cache),
    in the checkout's folder, which every small site shares: compiling them is
    most of what a small site's build costs. ``keep_compiled_templates=False``
    leaves that extension out.
    """
    if keep_compiled_templates and "template_cache" not in extensions:
        extensions = (*extensions, "template_cache")
        settings.setdefault("template_cache_dir", str(ROOT / "_build" / ".jinja"))
    ours = {path.stem for path in EXTENSIONS.glob("*.py")}
    names = [f"_ext.{name}" if name in ours else name for name in extensions]
    lines = [
        "import sys",
        f"sys.path.insert(0, {str(ROOT)!r})",
        f"extensions = {names!r}",
        *(f"{name} = {value!r}" for name, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def copy_folders(destination: Path, *folders: str) -> Path:
    """These folders of the checkout (``snippets``, ``tests``, ...) copied into
    ``destination``: what a small site's executed examples run."""
    for folder in folders:
        ignore = shutil.ignore_patterns(*NOT_SOURCES)
        shutil.copytree(ROOT / folder, destination / folder, ignore=ignore)
    return destination


def probe_site(site: Path, probe: str, *extensions: str, pages: int = 2) -> Path:
    """A small site whose own extension ``probe`` (its source, written as
    ``probe.py`` beside conf.py) loads after ``extensions``; its index lists
    ``pages`` empty pages (more than five are read in forked processes)."""
    site.mkdir(parents=True)
    (site / "probe.py").write_text(probe)
    conf = small_conf("myst_parser", *extensions, "probe")
    (site / "conf.py").write_text(conf + f"sys.path.insert(0, {str(site)!r})\n")
    names = [f"page{number}" for number in range(pages)]
    toctree = "```{toctree}\n" + "\n".join(names) + "\n```\n"
    (site / "index.md").write_text(f"# Home\n\n{toctree}")
    for name in names:
        (site / f"{name}.md").write_text(f"# {name}\n\nSome text.\n")
    return site


def build_in_parallel(site: Path, jobs: int, **environment: str) -> None:
    """``sphinx-build -b html -q -j jobs site site/out`` in a process of its own, as
    ``make html`` runs it (a test worker does not fork itself), with
    ``environment`` added to this process's."""
    sphinx = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", str(jobs)]
    subprocess.run(
        [*sphinx, site, site / "out"],
        check=True,
        capture_output=True,
        env={**os.environ, **environment},
    )


def copy_checkout(destination: Path, *also_without: str) -> Path:
    """The checkout's sources copied to ``destination``, as a test's site to change."""

    def ignored(folder: str, names: list[str]) -> set[str]:
        patterns = (*NOT_SOURCES, *also_without)
        return {
            name
            for name in names
            if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
            or Path(folder, name, "pyvenv.cfg").is_file()
        }

    shutil.copytree(ROOT, destination, ignore=ignored)
    return destination


@dataclass(frozen=True)
class Build:
    returncode: int
    #: What sphinx-build would print on stderr: warnings, errors, the extensions'
    #: own messages.
    stderr: str


def build_small_site(site: Path, out: Path | None = None, *options: str) -> Build:
    """``sphinx-build -b html -n -W --keep-going -j 1 -q [options] site out``."""
    sphinx_options = STRICT_BUILD[STRICT_BUILD.index("-b") :]
    jobs = sphinx_options.index("-j")
    sphinx_options[jobs : jobs + 2] = ["-j", "1"]
    argv = [*sphinx_options, *options, str(site), str(out or site / "_build")]
    saved_path = sys.path.copy()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr):
            returncode = build_main(argv)
    finally:
        sys.path[:] = saved_path
    return Build(returncode, stderr.getvalue())
