"""The suite's fixtures and hooks live in plugin modules (tests/plugins/)."""

from tests.plugins import PLUGINS

pytest_plugins = PLUGINS

# A service's own test suite, run by tests/toolkit/test_pytest_plugin.py, not by
# this one.
collect_ignore = ["toolkit/sample_service"]
