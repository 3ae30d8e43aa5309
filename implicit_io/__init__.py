"""Find, report and refuse implicit ORM I/O in async SQLAlchemy code.

- :mod:`implicit_io.guard`: a session guard that names each implicit load;
- :mod:`implicit_io.statement_budgets`: statement budgets for tests;
- :mod:`implicit_io.mapping_check`: relationships that hide how they load;
- :mod:`implicit_io.review_check`: the static check (``implicit-io-check``);
- :mod:`implicit_io.pytest_plugin`: all of it in pytest (``--implicit-io``).
"""

__version__ = "0.1.0"
