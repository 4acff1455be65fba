"""The fault harness (``python -m bench.faults``), CI size: a few kill -9s of the server, the
node supervisor and a standalone agent, and one disk-full episode, each during a small
Indexed Job, must leave every Job Complete with exact counts, no index run twice and no
process behind. The full run (20/5/3 kills, 200 completions) is in bench/faults/RESULTS.md."""

from __future__ import annotations

import pytest
from bench.faults.harness import Options, can_mount_tmpfs, run_scenario
from tests.pgtest import PG_DSN, postgres_available


def small(backend: str = "sqlite", kills: int = 2) -> Options:
    return Options(backend=backend, completions=8, parallelism=4, work=(0.1, 0.3), kills=kills,
                   gap=(0.4, 1.0), disk_hold=2.0, job_timeout=180.0, seed=9)


def check(result) -> None:
    print(result.row(), result.notes)
    assert result.ok, "\n".join(result.notes)


@pytest.mark.parametrize("scenario", ["server-kill", "supervisor-kill", "agent-kill"])
def test_kill_minus_nine_during_an_indexed_job(scenario, tmp_path):
    check(run_scenario(scenario, small(), tmp_path))


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root to mount a small tmpfs")
def test_disk_full_during_an_indexed_job(tmp_path):
    check(run_scenario("disk-full", small(kills=1), tmp_path))


@pytest.mark.skipif(not postgres_available(), reason=f"no PostgreSQL at {PG_DSN}")
def test_server_kill_on_postgres(tmp_path):
    check(run_scenario("server-kill", small(backend=PG_DSN, kills=1), tmp_path))
