"""What a page's front matter may hold, declared once (pydantic models).

- ``rule:`` on a rule page (``guides/rules/ioNNN.md``): its code, and the snippet
  functions of its failing ``example`` and its passing ``use_instead``; the rule's
  name, level, phase and summary come from the toolkit's registry
  (``implicit_io.rules``), the one list of rules;
- ``policy:`` on a policy page: status, decision level, audiences, review dates and
  owner.

:func:`validate` checks a page's parsed mapping (``guide_runtime.pages`` reads it); a
field that does not validate raises ``FrontMatterError``, naming the page, the field
and what to write.
"""

from __future__ import annotations

import typing
from datetime import date
from typing import Annotated, Any, Literal

import pydantic

from .pages import FrontMatterError

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


def validate(where: str, data: dict[str, Any]) -> FrontMatter:
    """``data``, a page's front matter mapping, validated; ``where`` names the page."""
    try:
        return FrontMatter.model_validate(data)
    except pydantic.ValidationError as error:
        raise FrontMatterError(_explain(where, error)) from None
