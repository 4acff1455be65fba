"""storage layer: the versioned object store (``base.Store``) and its backends."""

from __future__ import annotations

from pathlib import Path

from jobplane.storage.base import Store


def open_store(database: str, data_dir: Path) -> Store:
    """The Store for a ``--database`` setting: "sqlite" (DIR/state.db), "memory", or a postgresql:// URL.
    The caller still awaits ``start()``."""
    if database == "sqlite":
        from jobplane.storage.sqlite import SqliteStore

        return SqliteStore(Path(data_dir) / "state.db")
    if database == "memory":
        from jobplane.storage.memory import MemoryStore

        return MemoryStore()
    if database.startswith(("postgresql://", "postgres://")):
        from jobplane.storage.postgres import PostgresStore

        return PostgresStore(database)
    raise ValueError(f"unknown database {database!r}: want sqlite, memory or a postgresql:// URL")
