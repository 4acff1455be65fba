"""Two in-process servers on one PostgreSQL schema: only the lease holder runs the
controllers; a clean shutdown releases the lease and the other takes over at once."""

from __future__ import annotations

import asyncio

import pytest

from jobplane.server import Server
from jobplane.settings import Settings
from pgtest import PG_DSN, fresh_schema, postgres_available

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not postgres_available(), reason=f"no PostgreSQL at {PG_DSN}")]


@pytest.fixture
def schema():
    with fresh_schema("jp_unit") as name:
        yield name


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


async def test_a_server_restarted_after_a_crash_takes_its_own_lease_back_at_once(tmp_path, schema):
    """kill -9 of the leader leaves its lease held for 15 s. The server restarted on the same
    data directory has the same identity (its flock on DIR/leader-identity proves the old
    process gone), so it renews that lease at once; any other server still waits."""
    a = Server(settings(tmp_path, "a", schema))
    await a.start()
    identity = a.elector.identity

    async def crashed() -> bool:  # what kill -9 leaves: the lease neither released nor renewed
        return True

    a.elector.release_on_cancel = False
    a.elector.release = crashed
    await a.stop()
    b = Server(settings(tmp_path, "b", schema))
    await b.start()
    try:
        assert not b.tasks and b.elector.leader() == identity
        a2 = Server(settings(tmp_path, "a", schema))
        await a2.start()
        try:
            assert a2.elector.identity == identity and a2.elector.is_leader() and a2.tasks
            lease = await a2.client.get("leases", "jobplane-controller-manager", "kube-system")
            assert lease["spec"]["holderIdentity"] == identity and lease["spec"]["leaseTransitions"] == 0
            twin = Server(settings(tmp_path, "a", schema))  # a second server on a directory in use
            await twin.start()
            try:
                assert twin.elector.identity != identity and not twin.tasks
            finally:
                await twin.stop()
        finally:
            await a2.stop()
    finally:
        await b.stop()
