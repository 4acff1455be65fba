"""Join a stage trace (``bench/tracehooks``) into one timeline per pod and print the median time
of each step after its Job's write, for finding where POST Job -> container started goes.

    PYTHONPATH=bench/tracehooks JP_TRACE=/tmp/t.json JP_TRACE_KEYS=1 JP_TRACE_AGENT=1 \
        .venv/bin/python bench/bench_latency.py --jobs 60 --modes on
    .venv/bin/python bench/stages.py /tmp/t.json

Steps are the committed writes of the Job and of its pod (``write N``: the pod's N-th write,
with the phase it carried) and the first start and end of each traced call (``Cls.meth >`` and
``Cls.meth <``), from every process's ``$JP_TRACE.<pid>`` file (one clock: wall time).
"""

from __future__ import annotations

import glob
import json
import statistics
import sys
from collections import defaultdict


def timelines(prefix: str) -> dict[str, list[tuple[str, float]]]:
    """Per pod name: (step, wall time) pairs, the Job's write first (as 'job')."""
    writes: list = []
    calls: list = []
    for path in glob.glob(prefix + ".[0-9]*"):
        with open(path) as f:
            rec = json.load(f)
        writes += rec.get("writes", [])
        calls += rec.get("calls", [])
    job_at: dict[str, float] = {}
    steps: dict[str, list[tuple[str, float]]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    for _t0, t1, ops in sorted(writes, key=lambda w: w[1]):
        for op, key, phase in ops:
            kind, _, name = key.partition("/")
            name = name.rpartition("/")[2]
            if kind == "jobs.batch" and op == "create":
                job_at[name] = t1
            elif kind == "pods":
                seen[name] += 1
                steps[name].append((f"write {seen[name]} {op} {phase or ''}".rstrip(), t1))
    first: dict[tuple[str, str], tuple[float, float]] = {}
    for key, who, t0, t1 in calls:
        if who and (who, key) not in first:
            first[(who, key)] = (t0, t1)
    for (who, key), (t0, t1) in first.items():
        steps[who] += [(f"{key} >", t0), (f"{key} <", t1)]
    out = {}
    for pod, evs in steps.items():
        job = pod.rsplit("-", 1)[0]
        if job in job_at:
            out[pod] = [("job", job_at[job])] + sorted(evs, key=lambda e: e[1])
    return out


def main(prefix: str) -> None:
    lines = timelines(prefix)
    at: dict[str, list[float]] = defaultdict(list)
    for evs in lines.values():
        t0 = evs[0][1]
        for step, t in evs:
            at[step].append((t - t0) * 1e3)
    rows = sorted((statistics.median(v), step, len(v)) for step, v in at.items() if len(v) >= len(lines) // 2)
    print(f"{len(lines)} pods; median ms after the Job's write (n = pods with the step)")
    prev = 0.0
    for med, step, n in rows:
        print(f"{med:8.2f}  +{med - prev:6.2f}  {step}  (n={n})")
        prev = med


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/t.json")
