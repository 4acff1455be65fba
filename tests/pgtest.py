"""The local PostgreSQL used by the tests that need one: where it is, whether it answers,
and a throw-away schema per test (so parallel workers never share tables)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

PG_DSN = os.environ.get("JOBPLANE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

_available: bool | None = None


def postgres_available() -> bool:
    """Whether PostgreSQL answers at PG_DSN (asked once per process)."""
    global _available
    if _available is None:
        try:
            import psycopg

            with psycopg.connect(PG_DSN, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            _available = True
        except Exception:  # noqa: BLE001 - any failure means "no server"
            _available = False
    return _available


@contextlib.contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """A new schema name, dropped (with everything in it) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
