"""storage layer: the versioned object store (``base.Store``) and its backends."""

from __future__ import annotations

from pathlib import Path

from jobplane.storage.base import Store


def open_store(database: str, data_dir: Path, *, history: int | None = None,
               history_bytes: int | None = None) -> Store:
    """The Store for a ``--database`` setting: "sqlite" (DIR/state.db), "memory", or a postgresql:// URL.
    ``history``/``history_bytes`` bound the kept history (default: the mirror's defaults).
    The caller still awaits ``start()``."""
    from jobplane.storage.mirror import DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES

    kept = DEFAULT_HISTORY if history is None else history
    kept_bytes = DEFAULT_HISTORY_BYTES if history_bytes is None else history_bytes
    if database == "sqlite":
        from jobplane.storage.sqlite import SqliteStore

        return SqliteStore(Path(data_dir) / "state.db", history=kept, history_bytes=kept_bytes)
    if database == "memory":
        from jobplane.storage.memory import MemoryStore

        return MemoryStore(history=kept, history_bytes=kept_bytes)
    if database.startswith(("postgresql://", "postgres://")):
        from jobplane.storage.postgres import PostgresStore

        dsn, schema = split_schema(database)
        if schema:
            return PostgresStore(dsn, schema=schema, history=kept, history_bytes=kept_bytes)
        return PostgresStore(dsn, history=kept, history_bytes=kept_bytes)
    raise ValueError(f"unknown database {database!r}: want sqlite, memory or a postgresql:// URL")


def split_schema(url: str) -> tuple[str, str | None]:
    """``postgresql://...?schema=NAME`` -> (the URL without it, NAME): the schema (default
    ``jobplane``) is ours, not libpq's, so it must not reach the connection string."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema
