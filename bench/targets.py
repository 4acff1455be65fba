"""Issue #16's target table from the figures the benchmarks recorded in one ``run_all.sh`` run.

Each benchmark appends its key figures to ``$JOBPLANE_BENCH_SUMMARY`` (``benchlib.record_summary``);
this prints one row per target with the figure measured in that run and PASS/FAIL, so the run's
log answers "is every target met" without reading five tables; and, where there is one, the floor
measured in the same run without any control plane (the pod sandbox alone, ``floors.py``; kubectl
on a static replay): a target below its floor cannot be met by any server.

Usage: .venv/bin/python bench/targets.py SUMMARY.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from benchlib import print_table

CREATE_RATE_FLOOR = 2766.0  # the measured rate: p99 must hold "at the same or higher rate"


def rows(figures: list[dict[str, Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []

    def first(bench: str, **match: Any) -> dict[str, Any] | None:
        return next((f for f in figures if f["bench"] == bench
                     and all(f.get(k) == v for k, v in match.items())), None)

    t = first("throughput", mode="sandbox on")
    if t:
        ratio = t["rate"] / t["xargs"]
        floor = t.get("sandbox_floor")
        out.append(["bench_throughput.py 2,000 x `true`, parallelism 50 (sandbox on)",
                    f"{t['rate']:.0f}/s = {ratio:.3f}x xargs ({t['xargs']:.0f}/s); server {t['server_ms']:.1f} ms/pod",
                    ">= 0.5x", "PASS" if ratio >= 0.5 else "FAIL",
                    f"{floor:.0f}/s = {floor / t['xargs']:.3f}x xargs" if floor else "-"])
    lat = first("latency", mode="sandbox on")
    if lat:
        out.append(["bench_latency.py POST Job -> container started (sandbox on)",
                    f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms", "p50 <= 5, p99 <= 20 ms",
                    "PASS" if lat["p50_ms"] <= 5 and lat["p99_ms"] <= 20 else "FAIL",
                    f"p50 {lat['sandbox_p50_ms']:.1f}, p99 {lat['sandbox_p99_ms']:.1f} ms (spawn to exit)"
                    if lat.get("sandbox_p50_ms") else "-"])
    c = first("api", op="CREATE lease (POST)")
    if c:
        out.append(["bench_api.py CREATE, wrk -t2 -c50", f"{c['rps']:,.0f}/s, p99 {c['p99_ms']:.1f} ms",
                    f"p99 <= 50 ms at >= {CREATE_RATE_FLOOR:,.0f}/s",
                    "PASS" if c["p99_ms"] <= 50 and c["rps"] >= CREATE_RATE_FLOOR else "FAIL", "-"])
    s = first("scale")
    if s:
        n = s["completions"]
        out.append([f"bench_scale.py {n:,} completions: rate", f"{s['rate']:.0f}/s ({s['succeeded']:,} succeeded)",
                    ">= 1,000/s", "PASS" if s["rate"] >= 1000 and s["succeeded"] == n else "FAIL",
                    f"{s['sandbox_floor']:.0f}/s" if s.get("sandbox_floor") else "-"])
        shims = (f" (+ the container waiters' PSS: {s['rss_with_waiters_mb']:.0f} MiB)"
                 if s.get("rss_with_waiters_mb") else "")
        out.append([f"bench_scale.py {n:,} completions: peak RSS sum, all processes", f"{s['rss_peak_mb']:.0f} MiB{shims}",
                    "<= 400 MiB (at 100,000)",
                    ("PASS" if s["rss_peak_mb"] <= 400 else "FAIL") + ("" if n >= 100_000 else " (short run)"), "-"])
        out.append([f"kubectl get pods over the {s['pods_left']:,} pods left", f"{s['kubectl_s']:.2f} s "
                    f"(server-side Table {s['table_s']:.2f} s)", "<= 1 s",
                    "PASS" if s["kubectl_s"] <= 1.0 else "FAIL",
                    f"{s.get('kubectl_floor_s', float('nan')):.2f} s (kubectl on a static replay of the same bytes)"])
    return out


def main() -> None:
    path = Path(sys.argv[1])
    figures = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    print_table("Issue #16 targets, this run", ["benchmark", "figure", "target", "result",
                                                "same-run floor (no control plane)"], rows(figures))


if __name__ == "__main__":
    main()
