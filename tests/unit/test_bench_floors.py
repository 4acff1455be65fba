"""The benchmarks' same-run floors (bench/floors.py) and the target table that shows them
(bench/targets.py): the floor must run the agent's real sandbox command line, or its figure
says nothing about what a sandboxed pod costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import floors  # noqa: E402
import targets  # noqa: E402

from jobplane.agent import sandbox  # noqa: E402


def test_sandbox_argv_is_the_pods_view(tmp_path: Path) -> None:
    if not sandbox.detect().available:
        pytest.skip("bubblewrap cannot make namespaces here")
    argv = floors.sandbox_argv(tmp_path, ["sh", "-c", "cat /etc/hostname; ls -d /var/run/secrets/kubernetes.io/"
                                                     "serviceaccount; echo $$"])
    assert argv is not None and argv[0].endswith("bwrap")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["floor-0", floors.TOKEN_MOUNT, "2"]  # its own UTS and PID namespaces, the token mount


def test_xargs_run_runs_each_input_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    wall, cpu = floors.xargs_run(["sh", "-c", f'echo "$1" >> {log}', "sh"], 20, 4)
    assert sorted(int(x) for x in log.read_text().split()) == list(range(1, 21))
    assert wall > 0 and cpu >= 0


def test_target_rows_carry_the_same_run_floor() -> None:
    figures = [
        {"bench": "throughput", "mode": "sandbox on", "rate": 150.0, "xargs": 1800.0, "server_ms": 6.2,
         "sandbox_floor": 540.0},
        {"bench": "latency", "mode": "sandbox on", "p50_ms": 16.0, "p99_ms": 25.0, "sandbox_p50_ms": 2.8,
         "sandbox_p99_ms": 3.9},
        {"bench": "latency", "mode": "sandbox on", "p50_ms": 4.0, "p99_ms": 9.0},  # a later one: not used
    ]
    rows = targets.rows(figures)
    assert [r[3] for r in rows] == ["FAIL", "FAIL"]
    assert rows[0][4] == "540/s = 0.300x xargs"
    assert rows[1][4] == "p50 2.8, p99 3.9 ms (spawn to exit)"
    no_floor = targets.rows([{**figures[0], "sandbox_floor": None}])
    assert no_floor[0][4] == "-"
