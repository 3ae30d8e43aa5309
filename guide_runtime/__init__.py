"""What the tests, the examples and the site's extensions share.

- :mod:`guide_runtime.database`: the database (``GUIDE_DATABASE_URL``), checked, and
  a private fresh one per run;
- :mod:`guide_runtime.capture`: run a snippet function and record what it did;
- :mod:`guide_runtime.configurations`: which configuration a suite runs on, and the
  proof records it writes.

Nothing here imports ``tests/`` or ``_ext/``.
"""

#: The one variable that selects the database (read in guide_runtime.database only;
#: here so that what only sets it, tools/postgres.py, needs no SQLAlchemy).
DATABASE_URL_VARIABLE = "GUIDE_DATABASE_URL"
