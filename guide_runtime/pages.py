"""The site's pages and their front matter, read without a validator.

A page may start with YAML front matter (``---`` lines around a mapping). What its
fields may be is declared once, as pydantic models, in
``guide_runtime/front_matter.py``: ``rule:`` on a rule page, ``policy:`` on a policy
page.

:func:`front_matter_data` finds and parses the block (no pydantic: the build reads
a page without front matter, most of them, without loading the validator);
:func:`front_matter` returns it validated. Either raises :class:`FrontMatterError`,
naming the page and what to write.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .front_matter import FrontMatter

#: Every page of the site, relative to the project root.
PAGE_GLOBS = ("index.md", "guides/**/*.md")
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)?---\n", re.S)


class FrontMatterError(ValueError):
    """A page's front matter that does not validate; the message says what to fix."""


def front_matter_data(where: str, text: str) -> dict[str, Any] | None:
    """The mapping of the page's front matter, unvalidated; None without one."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    try:
        data = yaml.load(
            match[1] or "", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except yaml.YAMLError as error:
        raise FrontMatterError(
            f"{where}: front matter is not valid YAML: {error}"
        ) from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise FrontMatterError(f"{where}: front matter must be a mapping of fields.")
    return data


@cache
def _read(path: Path, stamp: tuple[int, int], where: str) -> FrontMatter:
    from .front_matter import validate  # pydantic, loaded by the first page read

    return validate(where, front_matter_data(where, path.read_text("utf-8")) or {})


def front_matter(root: Path, page: Path) -> FrontMatter:
    """The validated front matter of ``page`` (read again only when it changes)."""
    status = page.stat()
    where = page.relative_to(root).as_posix()
    return _read(page, (status.st_mtime_ns, status.st_size), where)


#: The MyST syntax extensions that change where a page's blocks are (conf.py
#: enables them; substitutions move no blocks).
BLOCK_EXTENSIONS = frozenset({"colon_fence", "deflist", "fieldlist"})


@cache
def markdown_parser():
    """MyST's own Markdown parser, to find a page's blocks as the build reads them
    (imported on first use: a build that reads front matter only needs none).
    Blocks only: the text inside them is left unparsed (most of a parse's time)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions=set(BLOCK_EXTENSIONS))
    parser = create_md_parser(config, RendererHTML)
    inline = set(parser.get_active_rules()["core"]) - {"normalize", "block"}
    return parser.disable(sorted(inline))


def site_pages(root: Path) -> list[Path]:
    """Every page of the site, in a stable order."""
    return sorted({page for pattern in PAGE_GLOBS for page in root.glob(pattern)})


def docname(root: Path, page: Path) -> str:
    return page.relative_to(root).with_suffix("").as_posix()
