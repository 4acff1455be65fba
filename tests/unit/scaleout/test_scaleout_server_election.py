"""Two in-process servers on one PostgreSQL schema: only the lease holder runs the
controllers; a clean shutdown releases the lease and the other takes over at once."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from jobplane.server import Server
from jobplane.settings import Settings

PG_DSN = os.environ.get("JOBPLANE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_up() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "no server"
        return False


pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not _postgres_up(), reason=f"no PostgreSQL at {PG_DSN}")]


@pytest.fixture
def schema():
    name = f"jp_unit_{uuid.uuid4().hex[:12]}"
    yield name
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def settings(tmp_path, name, schema) -> Settings:
    return Settings(data_dir=tmp_path / name, port=0, agent=False, database=f"{PG_DSN}?schema={schema}",
                    pki_path=str(tmp_path / "pki"))


async def test_only_the_leader_runs_controllers(tmp_path, schema):
    a = Server(settings(tmp_path, "a", schema))
    b = Server(settings(tmp_path, "b", schema))
    await a.start()
    try:
        await b.start()
        try:
            assert a.tasks and a.elector.is_leader()
            assert not b.tasks and b.elector.leader() == a.elector.identity
            assert a.token == b.token  # one --pki-dir
            await a.stop()
            for _ in range(100):  # b's next retry (2-4.4 s) finds the released lease
                if b.tasks:
                    break
                await asyncio.sleep(0.1)
            assert b.tasks and b.elector.is_leader()
            lease = await b.client.get("leases", "jobplane-controller-manager", "kube-system")
            assert lease["spec"]["leaseTransitions"] == 1
            assert all(not t.done() for t in b.tasks)
        finally:
            await b.stop()
    finally:
        await a.stop()


async def test_sqlite_server_runs_controllers_without_election(tmp_path):
    s = Server(Settings(data_dir=tmp_path / "d", port=0, agent=False))
    await s.start()
    try:
        assert s.tasks and s.elector is None
    finally:
        await s.stop()
