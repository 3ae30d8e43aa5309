"""The site's Sphinx extensions, one job each (conf.py lists them as ``_ext.NAME``).

They render what the test suite recorded and check the pages; none runs an example.
"""
