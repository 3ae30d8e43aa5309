"""Sphinx configuration. Custom extensions live in _ext/, one job each."""

import os
import sqlite3
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).parent
sys.path[:0] = [str(ROOT), str(ROOT / "_ext")]

from implicit_io.rule_links import docs_base_url  # noqa: E402  (the path above first)
from tools.published import moved_pages, sphinx_redirects  # noqa: E402

project = "Preventing implicit ORM I/O in async SQLAlchemy"
author = "Platform engineering"
copyright = "2026, Platform engineering"

extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_design",
    "notfound.extension",  # 404.html: the theme's page for any unknown URL
    "sphinx_reredirects",  # moved pages redirect (deploy/moved-pages.toml)
    "captured_run",  # runs a snippet at build time and shows its SQL or error
    "captured_variants",  # output that differs per configuration, as tests recorded it
    "snippet_contract",  # every example is a tested snippet, included by region
    "rules",  # rule registry from rule pages; the {rule} role
    "round_trips",  # a table of statements sent per strategy as the data grows
    "generated_table",  # a table whose rows a snippet computes at build time
    "measured_table",  # a table of timings `make bench` measured, with when and where
    "rule_skeleton",  # every rule page has the same sections, in order
    "rule_examples",  # a rule's Example / Use instead, from tested snippets
    "rule_page",  # level, phase, copy-review-link and tombstone on rule pages
    "rule_index",  # the {rule-index} table and rules.json
    "page_meta",  # policy front matter: validated, shown as a card, review date
    "page_access",  # keyboard and screen-reader fixes to the theme's markup
    "search_index_entries",  # index entries survive incremental builds (12599)
    "snippet_source",  # each example links its whole tested module
    "glossary_links",  # a glossary term links its definition where first used
    "proofs",  # {proof} cites the test behind a claim; where each suite proved it
    "generated_pages",  # test-code and module pages: one nav tree, rewritten if changed
    "template_cache",  # compiled theme templates kept between builds
    "search_stems",  # the search index stems each distinct word once
    "sitemap",  # sitemap.xml: every page at its canonical URL
    "asset_fingerprints",  # an edited stylesheet or script rewrites every page
    "charts",  # charts and diagrams drawn from the tables' data: {enforcement-phases}
    "frozen_heap",  # forked readers and writers skip the main process's heap in gc
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
html_js_files = [  # each does one thing; see its first lines
    ("phone-nav.js", {"defer": "defer"}),  # named menu toggles, search on every page
    ("responsive-tables.js", {"defer": "defer"}),  # wide tables stack on a phone
    ("proof-marks.js", {"defer": "defer"}),  # a proof mark opens its detail
]
html_favicon = "_static/favicon.svg"
html_search_scorer = (
    "_static/search-scorer.js"  # glossary second to the explaining page
)
html_last_updated_fmt = None

# Publishing (make dist). The 404 page is served for any unknown URL below the
# published path, so its links are absolute under that path.
notfound_urls_prefix = urlsplit(html_baseurl).path
notfound_context = {
    "title": "Page not found",
    "body": (ROOT / "deploy" / "404-body.html")
    .read_text()
    .replace("{prefix}", notfound_urls_prefix),
}
sitemap_excludes = ["404.html", "search.html", "genindex.html"]
# A moved page's old address redirects to its new one (deploy/moved-pages.toml).
redirects = sphinx_redirects(moved_pages())
redirect_html_template_file = "deploy/redirect.html"

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
