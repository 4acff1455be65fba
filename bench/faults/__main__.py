"""``python -m bench.faults``: run the fault scenarios and print one row per scenario and
backend. Defaults are the full run of issue 9: 20 server kills, 5 supervisor kills, 3 agent
kills and one disk-full episode, each during 200-completion Indexed Jobs, on SQLite and on
PostgreSQL (when it answers at ``JOBPLANE_TEST_POSTGRES``). ``--quick`` is the CI size."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.faults.harness import HEADER, Options, can_mount_tmpfs, run_scenario  # noqa: E402
from tests.pgtest import PG_DSN, postgres_available  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small Jobs, 2 faults each (the CI size)")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--server-kills", type=int, default=20)
    ap.add_argument("--supervisor-kills", type=int, default=5)
    ap.add_argument("--agent-kills", type=int, default=3)
    ap.add_argument("--disk-full", type=int, default=1, help="disk-full episodes")
    ap.add_argument("--completions", type=int, default=200)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--verbose", action="store_true", help="print each scenario's notes")
    args = ap.parse_args(argv)
    plan = {"server-kill": args.server_kills, "supervisor-kill": args.supervisor_kills,
            "agent-kill": args.agent_kills, "disk-full": args.disk_full}
    base = Options(completions=args.completions, parallelism=args.parallelism, seed=args.seed)
    if args.quick:
        plan = {k: min(v, 2) if k != "disk-full" else min(v, 1) for k, v in plan.items()}
        base = Options(completions=12, parallelism=4, work=(0.1, 0.4), gap=(0.5, 1.5), seed=args.seed,
                       disk_hold=3.0)
    backends = []
    for b in args.backends.split(","):
        if b == "sqlite":
            backends.append("sqlite")
        elif b.startswith("postgres"):
            if postgres_available():
                backends.append(PG_DSN)
            else:
                print(f"# PostgreSQL does not answer at {PG_DSN}: skipped")
    print(f"# seed {args.seed}; {base.completions} completions, parallelism {base.parallelism}; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start "
          f"(each row: the 1/5/15-minute load average when it ended)")
    print(HEADER, flush=True)
    failed = False
    for backend in backends:
        for name, count in plan.items():
            if count <= 0:
                continue
            if name == "disk-full" and not can_mount_tmpfs():
                print(f"# {name}: needs root and tmpfs: skipped")
                continue
            opts = Options(**{**base.__dict__, "backend": backend, "kills": count})
            result = run_scenario(name, opts)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{result.row()}  load {load}", flush=True)
            if args.verbose or not result.ok:
                for note in result.notes:
                    print(f"#   {note}")
            failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
