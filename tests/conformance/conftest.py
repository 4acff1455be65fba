"""Backends for the storage conformance suite: memory (when present), sqlite, postgres (when reachable)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobplane.storage.base import Store
from pgtest import PG_DSN, postgres_available


def _backends() -> list:
    names = []
    if importlib.util.find_spec("jobplane.storage.memory") is not None:
        names.append("memory")
    names.append("sqlite")
    names.append(pytest.param("postgres", marks=pytest.mark.postgres))
    return names


class Backend:
    """Opens stores of one kind over the same underlying database, and cleans up after the test."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.durable = name != "memory"
        self.shared = name == "postgres"  # several stores (servers) may share one database
        self.db_path = tmp_path / "state.db"
        self.schema = f"jp_test_{uuid.uuid4().hex[:12]}"
        self.opened: list[Store] = []

    def make(self, history: int = 100_000) -> Store:
        if self.name == "memory":
            from jobplane.storage.memory import MemoryStore

            return MemoryStore(history=history)
        if self.name == "sqlite":
            from jobplane.storage.sqlite import SqliteStore

            return SqliteStore(self.db_path, history=history)
        from jobplane.storage.postgres import PostgresStore

        return PostgresStore(PG_DSN, schema=self.schema, history=history)

    async def open(self, history: int = 100_000) -> Store:
        store = self.make(history)
        await store.start()
        self.opened.append(store)
        return store

    def spec(self) -> str:
        """How a subprocess (crash test) opens the same database."""
        if self.name == "sqlite":
            return f"sqlite:{self.db_path}"
        return f"postgres:{self.schema}:{PG_DSN}"

    async def cleanup(self) -> None:
        for store in self.opened:
            await store.close()
        if self.name == "postgres":
            import psycopg

            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture(params=_backends())
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip(f"no PostgreSQL at {PG_DSN}")
    b = Backend(request.param, tmp_path)
    yield b
    await b.cleanup()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
