"""Crash-test helper: writes objects forever, printing each key once its create returned.

Usage: store_crash_writer.py sqlite:PATH | postgres:SCHEMA:DSN [RESOURCE]. The test SIGKILLs it
mid-stream and checks every printed key survived. RESOURCE (default pods) is the storage prefix
written: ``events`` are kept in the database only.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def open_spec(spec: str):
    kind, _, rest = spec.partition(":")
    if kind == "sqlite":
        from jobplane.storage.sqlite import SqliteStore

        return SqliteStore(Path(rest))
    schema, _, dsn = rest.partition(":")
    from jobplane.storage.postgres import PostgresStore

    return PostgresStore(dsn, schema=schema)


async def main(spec: str, resource: str) -> None:
    store = open_spec(spec)
    await store.start()

    async def writer(w: int) -> None:
        i = 0
        while True:
            key = f"{resource}/crash/w{w}-{i}"
            await store.create(key, {"metadata": {"name": f"w{w}-{i}"}, "spec": {"pad": "x" * 200}})
            sys.stdout.write(key + "\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*[writer(w) for w in range(20)])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "pods"))
