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

#: The public names, by the module that defines them. They are imported on first
#: use (PEP 562): ``python -m implicit_io.report`` then runs a module that the
#: package has not imported already, and ``import implicit_io`` stays cheap.
_EXPORTS = {
    "allow_list": ("AllowListError", "load_allow_list"),
    "guard": (
        "AllowedLoadCannotRunError",
        "ImplicitIOError",
        "ImplicitIOGuard",
        "ImplicitLoad",
        "KnownException",
        "Mode",
        "explain_detached",
        "guard_mode",
    ),
    "mapping_check": ("MappingCheckError", "check_mappings"),
    "report": ("Baseline", "Report"),
    "review_check": ("check_source",),
    "rules": ("RULES", "Rule", "rule"),
    "statement_budgets": (
        "StatementBudget",
        "StatementBudgetExceeded",
        "assert_statements",
        "max_statements",
        "record_statements",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'implicit_io' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"implicit_io.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


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
