"""Sphinx configuration. Custom extensions live in _ext/, one job each."""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from guide_runtime.configurations import default_record_versions  # noqa: E402  (path first)
from implicit_io.rule_links import docs_base_url  # noqa: E402
from tools.published import moved_pages, sphinx_redirects  # noqa: E402

project = "Preventing implicit ORM I/O in async SQLAlchemy"
author = "Platform engineering"
copyright = "2026, Platform engineering"

# The site's own extensions (_ext/, one job each) render what the test suite
# recorded and check the pages; none runs an example.
extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_design",
    "notfound.extension",  # 404.html: the theme's page for any unknown URL
    "sphinx_reredirects",  # moved pages redirect (deploy/moved-pages.toml)
    "_ext.recorded_output",  # captured runs and tables, as the suite recorded them
    "_ext.captured_variants",  # output a test recorded per configuration
    "_ext.snippet_contract",  # every example is a tested snippet, shown by region
    "_ext.front_matter",  # each page's front matter, validated as it is read
    "_ext.rules",  # the {rule} role, from the toolkit's rule registry
    "_ext.rule_page",  # rule pages: header, sections and tested examples, checked
    "_ext.rule_index",  # the {rule-index} table and rules.json
    "_ext.page_meta",  # policy front matter shown as a card, review date
    "_ext.measured_table",  # timings `make bench` measured, with when and where
    "_ext.proofs",  # {proof}: the test behind a claim, where each suite proved it
    "_ext.snippet_source",  # each example links its whole tested module
    "_ext.glossary_links",  # a glossary term links its definition where first used
    "_ext.page_access",  # keyboard and screen-reader fixes to the theme's markup
    "_ext.search",  # the search index: entries kept (Sphinx 12599), words stemmed once
    "_ext.generated_pages",  # test-code and module pages: written only if changed
    "_ext.template_cache",  # compiled theme templates kept between builds
    "_ext.sitemap",  # sitemap.xml: every page at its canonical URL
    "_ext.asset_fingerprints",  # an edited stylesheet or script rewrites every page
    "_ext.charts",  # charts and diagrams drawn from the tables' data
]

include_patterns = ["index.md", "guides/**"]
# Sphinx walks every folder it does not exclude, even with include_patterns: leave
# out the build, hidden folders (.git, caches, .venv*) and any other virtualenv.
exclude_patterns = ["_build", ".*", "*venv*"]

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "substitution"]
myst_heading_anchors = 3
# The versions the shown output was recorded with: the default configuration's run.
myst_substitutions = {
    f"{name}_version": version
    for name, version in default_record_versions(ROOT).items()
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
