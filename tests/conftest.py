"""Makes the shared test helpers beside this file (e.g. ``pgtest``) importable from every suite."""
