"""Sphinx configuration. Custom extensions live in _ext/, one job each."""

import os
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from implicit_io.rule_links import docs_base_url  # noqa: E402  (the path above first)

project = "Preventing implicit ORM I/O in async SQLAlchemy"
author = "Platform engineering"
copyright = "2026, Platform engineering"

# The site's own extensions (_ext/, one job each) render what the test suite
# recorded and check the pages; none runs an example.
extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_design",
    "_ext.recorded_output",  # captured runs and tables, as the suite recorded them
    "_ext.captured_variants",  # output a test recorded per configuration
    "_ext.snippet_contract",  # every example is a tested snippet, shown by region
    "_ext.rules",  # the {rule} role, from the toolkit's rule registry
    "_ext.rule_skeleton",  # every rule page has the same sections, in order
    "_ext.rule_examples",  # a rule's Example / Use instead, from tested snippets
    "_ext.rule_page",  # level, phase, review link and tombstone on rule pages
    "_ext.rule_index",  # the {rule-index} table and rules.json
    "_ext.page_meta",  # policy front matter shown as a card, review date
    "_ext.measured_table",  # timings `make bench` measured, with when and where
    "_ext.proofs",  # {proof}: the test behind a claim, where each suite proved it
    "_ext.snippet_source",  # each example links its whole tested module
    "_ext.glossary_links",  # a glossary term links its definition where first used
    "_ext.page_access",  # keyboard and screen-reader fixes to the theme's markup
    "_ext.search_index_entries",  # index entries survive incremental builds (12599)
    "_ext.generated_pages",  # test-code and module pages: written only if changed
    "_ext.template_cache",  # compiled theme templates kept between builds
    "_ext.search_stems",  # the search index stems each distinct word once
]

include_patterns = ["index.md", "guides/**"]
# Sphinx walks every folder it does not exclude, even with include_patterns: leave
# out the build, hidden folders (.git, caches, .venv*) and any other virtualenv.
exclude_patterns = ["_build", ".*", "*venv*"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "substitution"]
myst_heading_anchors = 3
myst_substitutions = {
    "sqlalchemy_version": metadata.version("sqlalchemy"),
    "aiosqlite_version": metadata.version("aiosqlite"),
    "greenlet_version": metadata.version("greenlet"),
    "sqlite_version": sqlite3.sqlite_version,
    "python_version": sys.version.split()[0],
}

html_theme = "furo"
html_title = "Implicit ORM I/O policy"
# One published address: the toolkit's messages, rules.json, every page's canonical
# link and "Copy review link" all use it (IMPLICIT_IO_DOCS_URL overrides the default).
html_baseurl = docs_base_url()
html_static_path = ["_static"]
html_css_files = ["guide.css"]
html_favicon = "_static/favicon.svg"
html_search_scorer = (
    "_static/search-scorer.js"  # glossary second to the explaining page
)
html_last_updated_fmt = None

# Copy only runnable code: no prompts, no output lines, no line numbers.
copybutton_exclude = ".linenos, .gp, .go"
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

nitpicky = True

# `make linkcheck` checks this site's own links everywhere. External ones (the
# SQLAlchemy documentation) only where the network reaches them: set
# LINKCHECK_EXTERNAL=1 there. The intranet build machines cannot, so by default every
# external URL is listed as ignored (and shown so in the report).
if not os.environ.get("LINKCHECK_EXTERNAL"):
    linkcheck_ignore = [r"https?://"]
