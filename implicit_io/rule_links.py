"""Rule codes and the links every enforcement message carries.

Each tool in the enforcement toolkit names the rule it enforces and links to the
rule's page, so a failing test, a log line or a review comment explains itself.
Every tool of the package imports it.
"""

from __future__ import annotations

import os

from implicit_io.rules import RULES

# region rule_links
#: Where the rule pages are published unless ``IMPLICIT_IO_DOCS_URL`` says otherwise.
DEFAULT_DOCS_URL = "https://docs.example.internal/orm-io/"
DOCS_URL_VARIABLE = "IMPLICIT_IO_DOCS_URL"


def docs_base_url() -> str:
    """The base URL of the rule pages: ``IMPLICIT_IO_DOCS_URL``, else the default."""
    return os.environ.get(DOCS_URL_VARIABLE) or DEFAULT_DOCS_URL


#: The rules the toolkit reports, by code (the names the rule pages use): the
#: registry's codes and names (:mod:`implicit_io.rules`).
KNOWN_RULES = {code: rule.name for code, rule in RULES.items()}


def rule_url(code: str, base_url: str | None = None) -> str:
    """The page of rule ``code``, e.g. ``<base>guides/rules/io101.html``."""
    if code not in RULES:
        raise ValueError(f"unknown rule code {code!r}; known codes: {', '.join(RULES)}")
    return RULES[code].url(base_url)


def page_url(page: str, base_url: str | None = None) -> str:
    """A page of the site, e.g. ``guides/review-check.html#...``, under the base."""
    base = docs_base_url() if base_url is None else base_url
    return f"{base.rstrip('/')}/{page}" if base else page  # "": relative to the site


# endregion rule_links
