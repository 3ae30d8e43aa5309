"""The suite's fixtures and hooks, one plugin module per concern (as pytest-django
splits its own): tests/conftest.py loads them all, and a pytester run's conftest can
load them too (``conftest_text()``)."""

PLUGINS = [
    "tests.plugins.databases",
    "tests.plugins.configurations",
    "tests.plugins.proofs",
    "tests.plugins.outputs",
    "tests.plugins.site",
    "tests.plugins.termination",
]


def conftest_text() -> str:
    """A conftest.py for an inner pytest run that loads this suite's plugins."""
    return f"pytest_plugins = {PLUGINS!r}\n"


#: For an inner pytest run (pytester): the installed plugins this suite's own addopts
#: turn off, which an inner run does not read, off there too. pytest-randomly would
#: reorder the run's tests; queryguard and queryspy (the enforcement page compares
#: them) would import themselves again in every inner run and leave a listener on
#: SQLAlchemy's Session, Engine or both, holding that run's whole session, for the
#: rest of the worker.
INNER_RUN_PLUGINS_OFF = (
    "-p",
    "no:randomly",
    "-p",
    "no:queryguard",
    "-p",
    "no:queryspy",
)
