"""The suite's fixtures and hooks, one plugin module per concern (as pytest-django
splits its own): tests/conftest.py loads them all, and a pytester run's conftest can
load them too (``conftest_text()``)."""

PLUGINS = [
    "tests.plugins.databases",
    "tests.plugins.configurations",
    "tests.plugins.proofs",
    "tests.plugins.outputs",
    "tests.plugins.site",
]


def conftest_text() -> str:
    """A conftest.py for an inner pytest run that loads this suite's plugins."""
    return f"pytest_plugins = {PLUGINS!r}\n"


#: For an inner pytest run (pytester): the installed plugins that watch SQLAlchemy
#: (queryguard, queryspy; the enforcement page compares them), off, as this suite's
#: own addopts have them, which an inner run does not read. Loaded, each would
#: import itself again in every inner run and leave a listener on SQLAlchemy's
#: Session, Engine or both, holding that run's whole session, for the rest of the
#: worker.
NO_OTHER_SQL_PLUGINS = ("-p", "no:queryguard", "-p", "no:queryspy")
