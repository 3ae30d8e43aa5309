"""Compiled page templates kept between builds (Jinja's bytecode cache).

Before it writes its first page, every build compiles the theme's templates
again: about a fifth of a build that has one page to write. Jinja can keep what it
compiles in files, keyed by each template's name and checked against its source
(and the Python version) when read back. They are kept beside the result store
(``executed_store.store_dir``), so ``make html``, ``make serve`` and the test
suite's builds share them; removing ``_build`` removes them too.
"""

from __future__ import annotations

from executed_store import store_dir
from jinja2 import FileSystemBytecodeCache
from sphinx.application import Sphinx


def _keep_compiled_templates(app: Sphinx) -> None:
    environment = getattr(getattr(app.builder, "templates", None), "environment", None)
    if environment is None:  # a builder that renders no Jinja templates
        return
    folder = store_dir(app.srcdir) / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("builder-inited", _keep_compiled_templates)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
