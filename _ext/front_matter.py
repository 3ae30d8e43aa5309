"""Each page's front matter, validated as Sphinx reads the page, kept as plain data.

The fields are pydantic models (``guide_runtime/front_matter.py``); a page's validated
mapping is kept as plain values in ``env.guide_front_matter``, so loading the
environment needs no validator and a one-page edit validates one page. A page that
does not validate is reported (naming the page, the field and the fix) and read
again on every build until fixed, so an incremental build fails as a cold one does.
"""

from __future__ import annotations

from sphinx.util import logging

from guide_runtime.pages import FrontMatterError, front_matter_data

from .markup import per_page, store

KEY, BAD = "guide_front_matter", "guide_bad_front_matter"
logger = logging.getLogger(__name__)


def page_front_matter(env, docname: str) -> dict:
    """The page's validated front matter as plain data (empty without any)."""
    return getattr(env, KEY, {}).get(docname, {})


def _read(app, docname: str, source: list[str]) -> None:
    where = app.env.doc2path(docname).relative_to(app.srcdir).as_posix()
    try:
        data = front_matter_data(where, source[0])
        if data is not None:
            # pydantic: loaded only by a build that reads a page with front matter.
            from guide_runtime.front_matter import validate

            store(app.env, KEY)[docname] = validate(where, data).model_dump()
    except FrontMatterError as error:
        store(app.env, BAD)[docname] = True
        logger.warning("page metadata: %s", error, type="page_meta", subtype="field")


def bad_pages(env) -> list[str]:
    """The pages whose front matter did not validate (reported when read)."""
    return sorted(getattr(env, BAD, {}))


def _read_again(app, env, added, changed, removed) -> list[str]:
    return bad_pages(env)


def setup(app):
    # Before the handlers that use it (rule pages check theirs as they are read).
    app.connect("source-read", _read, priority=100)
    app.connect("env-get-outdated", _read_again)
    per_page(app, KEY)
    per_page(app, BAD)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
