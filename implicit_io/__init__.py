"""Find, report and refuse implicit ORM I/O in async SQLAlchemy code.

The names a service uses, at the top level::

    from implicit_io import ImplicitIOGuard

    guard = ImplicitIOGuard("enforce")
    guard.install(session_factory)

- :mod:`implicit_io.guard`: a session guard that names each implicit load;
- :mod:`implicit_io.statement_budgets`: statement budgets for tests;
- :mod:`implicit_io.mapping_check`: relationships that hide how they load;
- :mod:`implicit_io.review_check`: the static check (``implicit-io-check``);
- :mod:`implicit_io.pytest_plugin`: all of it in pytest (``--implicit-io``);
- :mod:`implicit_io.report`: load reports and baselines (``implicit-io-report``);
- :mod:`implicit_io.rules`: the rule registry.
"""

__version__ = "0.2.0"

from implicit_io.allow_list import AllowListError, load_allow_list
from implicit_io.guard import (
    AllowedLoadCannotRunError,
    ImplicitIOError,
    ImplicitIOGuard,
    ImplicitLoad,
    KnownException,
    Mode,
    explain_detached,
    guard_mode,
)
from implicit_io.mapping_check import MappingCheckError, check_mappings
from implicit_io.report import Baseline, Report
from implicit_io.review_check import check_source
from implicit_io.rules import RULES, Rule, rule
from implicit_io.statement_budgets import (
    StatementBudget,
    StatementBudgetExceeded,
    assert_statements,
    max_statements,
    record_statements,
)

__all__ = [
    "RULES",
    "AllowListError",
    "AllowedLoadCannotRunError",
    "Baseline",
    "ImplicitIOError",
    "ImplicitIOGuard",
    "ImplicitLoad",
    "KnownException",
    "MappingCheckError",
    "Mode",
    "Report",
    "Rule",
    "StatementBudget",
    "StatementBudgetExceeded",
    "__version__",
    "assert_statements",
    "check_mappings",
    "check_source",
    "explain_detached",
    "guard_mode",
    "load_allow_list",
    "max_statements",
    "record_statements",
    "rule",
]
