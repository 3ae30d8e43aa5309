"""The site's pages and their front matter, declared once (pydantic models).

A page may start with YAML front matter. Two keys mean something here:

- ``rule:`` on a rule page (``guides/rules/ioNNN.md``): its code, and the snippet
  functions of its failing ``example`` and its passing ``use_instead``; the rule's
  name, level, phase and summary come from the toolkit's registry
  (``implicit_io.rules``), the one list of rules;
- ``policy:`` on a policy page: status, decision level, audiences, review dates and
  owner.

The site's extensions and the test that records page outputs read front matter
through :func:`front_matter` only. A field that does not validate raises
:class:`FrontMatterError`, naming the page, the field and what to write.
"""

from __future__ import annotations

import calendar
import re
import typing
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml

#: Every page of the site, relative to the project root.
PAGE_GLOBS = ("index.md", "guides/**/*.md")
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)?---\n", re.S)

SnippetTarget = Annotated[
    str, pydantic.StringConstraints(pattern=r"^[a-z_][a-z0-9_]*:[A-Za-z_]\w*$")
]
TARGET = (
    "a snippet function as 'module:function', module in snippets/, like "
    "eager_loading:post_titles_by_author"
)


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


class RulePage(_Strict):
    """A rule page's ``rule:`` mapping."""

    code: Annotated[
        str,
        pydantic.StringConstraints(pattern=r"^IO[1-9]\d\d$"),
        pydantic.Field(description="the rule's code, like IO101"),
    ]
    #: The failing example (a live rule must name one) and what to write instead.
    example: SnippetTarget | None = pydantic.Field(None, description=TARGET)
    use_instead: SnippetTarget | None = pydantic.Field(None, description=TARGET)
    #: The data both run on, instead of the sample users.
    seed: SnippetTarget | None = pydantic.Field(None, description=TARGET)


Audience = Literal["api-runtime", "workers", "tests"]


class PolicyPage(_Strict):
    """A policy page's ``policy:`` mapping."""

    status: Literal["draft", "adopted", "retired"]
    decision_level: Literal["advisory", "mandatory"]
    applies_to: Annotated[
        list[Audience],
        pydantic.Field(min_length=1, description="like [api-runtime, workers]"),
    ]
    last_reviewed: Annotated[
        date, pydantic.Field(description="a date written YYYY-MM-DD, unquoted")
    ]
    review_every: Annotated[
        str,
        pydantic.StringConstraints(pattern=r"^[1-9]\d* (day|week|month)s?$"),
        pydantic.Field(description="like '6 months', '90 days' or '8 weeks'"),
    ]
    owner: Annotated[
        str,
        pydantic.StringConstraints(strip_whitespace=True, min_length=1),
        pydantic.Field(description="the team that owns the page"),
    ]

    @property
    def review_due(self) -> date:
        """``review_every`` after ``last_reviewed`` (a shorter month: its last day)."""
        number, unit = self.review_every.split()
        count, reviewed = int(number), self.last_reviewed
        if unit.startswith("day"):
            return reviewed + timedelta(days=count)
        if unit.startswith("week"):
            return reviewed + timedelta(weeks=count)
        months = reviewed.month - 1 + count
        year, month = reviewed.year + months // 12, months % 12 + 1
        return date(year, month, min(reviewed.day, calendar.monthrange(year, month)[1]))

    @pydantic.field_validator("applies_to")
    @classmethod
    def _distinct(cls, audiences: list[str]) -> list[str]:
        if len(set(audiences)) != len(audiences):
            raise ValueError("each audience once")
        return audiences


class FrontMatter(_Strict):
    """What a page's front matter may hold: ours, and the keys MyST and Sphinx read."""

    rule: RulePage | None = None
    policy: PolicyPage | None = None
    orphan: bool | None = None
    nosearch: bool | None = None
    tocdepth: int | None = None
    html_meta: dict[str, Any] | None = None
    myst: dict[str, Any] | None = None


class FrontMatterError(ValueError):
    """A page's front matter that does not validate; the message says what to fix."""


def _field_info(loc: tuple[Any, ...]) -> pydantic.fields.FieldInfo | None:
    """The declared field at ``loc`` (through optional sub-models), for its hint."""
    model: Any = FrontMatter
    info = None
    for part in loc:
        candidates = [model, *typing.get_args(model)]
        model = next(
            (
                c
                for c in candidates
                if isinstance(c, type) and issubclass(c, pydantic.BaseModel)
            ),
            None,
        )
        info = (
            model.model_fields.get(part)
            if model is not None and isinstance(part, str)
            else None
        )
        if info is None:
            return None
        model = info.annotation
    return info


def _explain(where: str, error: pydantic.ValidationError) -> str:
    problems = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        info = _field_info(problem["loc"])
        hint = f" ({info.description})" if info is not None and info.description else ""
        if problem["type"] == "extra_forbidden":
            problems.append(f"unknown field {field!r}: remove it or fix its name")
        elif problem["type"] == "missing":
            problems.append(f"{field} is missing: add it{hint}")
        else:
            problems.append(
                f"{field}: {problem['msg']}{hint}, not {problem['input']!r}"
            )
    return f"{where}: front matter: " + "; ".join(problems) + "."


def _parse(where: str, text: str) -> FrontMatter:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return FrontMatter()
    try:
        data = yaml.load(
            match[1] or "", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except yaml.YAMLError as error:
        raise FrontMatterError(
            f"{where}: front matter is not valid YAML: {error}"
        ) from None
    if data is None:
        return FrontMatter()
    if not isinstance(data, dict):
        raise FrontMatterError(f"{where}: front matter must be a mapping of fields.")
    try:
        return FrontMatter.model_validate(data)
    except pydantic.ValidationError as error:
        raise FrontMatterError(_explain(where, error)) from None


@cache
def _read(path: Path, stamp: tuple[int, int], where: str) -> FrontMatter:
    return _parse(where, path.read_text(encoding="utf-8"))


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
