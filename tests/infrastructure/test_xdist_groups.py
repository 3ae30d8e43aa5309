"""The suite keeps the built site's tests in one pytest-xdist worker (``--dist
loadgroup`` and the ``xdist_group`` marker tests/plugins/site.py adds), so that one
worker builds the site once. pytest 9.2 with pytest-xdist 3.8 silently ignores the
groups (pytest-xdist#1386): two workers then build into one folder at once, and the
builds break each other. This fails, saying so, when an upgrade breaks it again.
"""

from __future__ import annotations

import pytest

from tests.plugins import INNER_RUN_PLUGINS_OFF, conftest_text

GROUPED = """
import os

import pytest


@pytest.mark.parametrize("case", range(6))
def test_uses_the_site(case, built_site_stand_in):
    with open("workers.txt", "a") as file:
        file.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")


@pytest.mark.parametrize("case", range(6))
def test_other(case):
    pass
"""
STAND_IN = """
import pytest


def pytest_itemcollected(item):
    if "built_site_stand_in" in item.fixturenames:
        item.add_marker(pytest.mark.xdist_group("built-site"))


@pytest.fixture
def built_site_stand_in():
    return None
"""


def test_the_built_sites_tests_share_one_worker(pytester: pytest.Pytester) -> None:
    assert "tests.plugins.site" in conftest_text()  # the plugin this mirrors
    pytester.makeconftest(STAND_IN)
    pytester.makepyfile(test_grouped=GROUPED)
    # The controller runs here (starting another Python costs more than the run);
    # its two workers are processes of their own, as in the suite. Its tests are
    # not async: no pytest-asyncio, which would warn here about its unset ini key,
    # and none of the installed plugins that import SQLAlchemy in every worker.
    others = [*INNER_RUN_PLUGINS_OFF, "-p", "no:asyncio", "-p", "no:anyio"]
    result = pytester.runpytest_inprocess("-n", "2", "--dist", "loadgroup", *others)
    result.assert_outcomes(passed=12)
    workers = set((pytester.path / "workers.txt").read_text().split())
    assert len(workers) == 1, (
        f"the grouped tests ran in {sorted(workers)}: --dist loadgroup ignored "
        "xdist_group (pytest-xdist#1386). Pin a pytest that pytest-xdist supports "
        "in requirements.in and run make lock."
    )
