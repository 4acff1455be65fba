"""Makes the shared test helpers beside this file (e.g. ``pgtest``) importable from every suite.

Pods run in a sandbox with their own /tmp: tests that hand a pod a path on the host (a queue
directory, a trace file) need it outside /tmp, so pytest's tmp_path root is /var/tmp (set
before the first tmp_path is made; an explicit PYTEST_DEBUG_TEMPROOT wins)."""

import os

os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/var/tmp")
