"""Compiled page templates kept between builds (Jinja's bytecode cache).

Every build compiled the theme's templates again before its first page: about a fifth
of a one-page rebuild. Jinja keeps them in ``template_cache_dir`` (default
``_build/.jinja``; ``make clean`` removes it), checked against each source when read.
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
