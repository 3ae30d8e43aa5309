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
