"""Compiled page templates kept between builds (Jinja's bytecode cache).

Before it writes its first page, every build compiles the theme's templates again:
about a fifth of a build that has one page to write. Jinja can keep what it compiles
in files, keyed by each template's name and checked against its source (and the
Python version) when read back. They are kept in ``template_cache_dir`` (default
``_build/.jinja`` beside the sources), which ``make clean`` removes; the test suite's
small sites point it at the checkout's folder, so they share it.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemBytecodeCache
from sphinx.application import Sphinx


def _keep_compiled_templates(app: Sphinx) -> None:
    environment = getattr(getattr(app.builder, "templates", None), "environment", None)
    if environment is None:  # a builder that renders no Jinja templates
        return
    folder = Path(app.srcdir, app.config.template_cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    environment.bytecode_cache = FileSystemBytecodeCache(str(folder))


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_config_value("template_cache_dir", "_build/.jinja", "", types=[str])
    app.connect("builder-inited", _keep_compiled_templates)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
