"""API benchmark: GETs/s, creates/s and label-selected LISTs/s of a real ``jobplane server`` over
HTTPS (wrk, keep-alive), and the same verbs through the in-process transport.

Usage: .venv/bin/python bench/bench_api.py [--duration 10] [--threads 2] [--connections 50]
                                           [--objects 10000] [--profile DIR] [--only-authz|--skip-authz]

Authorization: GET and CREATE as a user outside ``system:masters`` (a static token granted
Leases by a ClusterRole and RoleBindings), with ``--authorization-mode AlwaysAllow`` and with ``Node,RBAC``, one
server after the other in the same run; the table gives the cost of authorization.

Objects are coordination.k8s.io/v1 Leases: small and ConfigMap-like; no controller acts on them
(the scheduler's and node-lifecycle controller's shared Lease informer does receive every
create, as kube-apiserver's watch cache would), so the numbers measure the API path. ``--profile DIR`` runs
``py-spy record`` on the server during each wrk phase (raw collapsed stacks, see profile_top.py).

Reference figures (upstream kube-apiserver 1.28 + etcd in kind, same wrk settings, as quoted in
the issue; NOT measured here): 4,400 GETs/s, 2,450 creates/s, 228 LISTs/s of 100 out of 37,000
objects, 510 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
from benchlib import PySpy, ServerProc, print_machine, print_table, record_summary, start_server

REFERENCE = {"get": 4400.0, "create": 2450.0, "list": 228.0, "rss_mb": 510.0}
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NS = "bench"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
HOT = 100  # items selected by the LIST


def lease(name: str, bucket: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "labels": {"bucket": bucket, "app": "bench"}},
            "spec": {"holderIdentity": "bench-holder", "leaseDurationSeconds": 15}}


# --- wrk -----------------------------------------------------------------------------------

WRK_AUTH = """
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Accept"] = "application/json"
"""

# One Lua state per wrk thread: a per-thread id plus a counter gives unique names.
WRK_CREATE = WRK_AUTH + """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local tid = 0
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
function init(args)
  tid = wrk.thread:get("tid") or math.random(1, 1000000)
end
function request()
  counter = counter + 1
  local body = '{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"c-' ..
    tid .. '-' .. counter .. '","labels":{{"app":"bench-create"}}}},' ..
    '"spec":{{"holderIdentity":"bench-holder","leaseDurationSeconds":15}}}}'
  return wrk.format(nil, "{path}", nil, body)
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:(.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else ""
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    return res


def run_wrk(srv: ServerProc, path: str, args: argparse.Namespace, script: str, label: str,
            profile_dir: Path | None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        lua = f.name
    cmd = [WRK, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
           "-s", lua, srv.url + path]
    out_file = str(profile_dir / f"api-{label}.txt") if profile_dir else None
    with PySpy(srv.pid, out_file):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(lua).unlink()
    time.sleep(args.drain)  # let requests still queued in the server finish before the next phase
    res = parse_wrk(out)
    if res["non2xx"]:
        print(f"WARNING: {label}: {res['non2xx']} non-2xx responses")
    if res["socket_errors"]:
        print(f"WARNING: {label}: socket errors {res['socket_errors']}")
    return res


async def populate(srv: ServerProc, start: int, stop: int, hot_until: int, conc: int = 50) -> float:
    """Create leases start..stop-1 in NS; the first ``hot_until`` are labelled bucket=hot."""
    t = time.perf_counter()
    async with srv.session(limit=conc) as api:
        sem = asyncio.Semaphore(conc)

        async def one(i: int) -> None:
            async with sem, api.post(LEASES.format(ns=NS),
                                     json=lease(f"l-{i}", "hot" if i < hot_until else "cold")) as r:
                if r.status != 201:
                    raise RuntimeError(f"create l-{i}: {r.status} {await r.text()}")

        await asyncio.gather(*(one(i) for i in range(start, stop)))
    return (stop - start) / (time.perf_counter() - t)


async def setup_server(srv: ServerProc) -> None:
    async with srv.session() as api:
        async with api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": NS}}) as r:
            assert r.status == 201, await r.text()
        async with api.post(LEASES.format(ns=NS), json=lease("bench-get", "single")) as r:
            assert r.status == 201, await r.text()
        async with api.get(LEASES.format(ns=NS) + "/bench-get") as r:
            assert r.status == 200, await r.text()


async def list_count(srv: ServerProc) -> int:
    async with srv.session() as api, api.get(LEASES.format(ns=NS), params={"labelSelector": "bucket=hot"}) as r:
        return len((await r.json(loads=orjson.loads))["items"])


def http_bench(args: argparse.Namespace) -> tuple[list[list], float]:
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    srv = start_server(agent=False)
    rows: list[list] = []
    try:
        asyncio.run(setup_server(srv))
        auth = WRK_AUTH.format(token=srv.token)
        get_path = LEASES.format(ns=NS) + "/bench-get"
        list_path = LEASES.format(ns=NS) + "?labelSelector=bucket%3Dhot"
        small = min(1000, args.objects)
        rate = asyncio.run(populate(srv, 0, small - 1, HOT))  # + bench-get = `small` objects
        print(f"populated {small} leases ({rate:.0f} creates/s, 50 concurrent aiohttp clients)")

        r = run_wrk(srv, get_path, args, auth, "get", profile_dir)
        rows.append(["GET one lease", r, REFERENCE["get"]])
        assert asyncio.run(list_count(srv)) == HOT
        r = run_wrk(srv, list_path, args, auth, f"list-{small}", profile_dir)
        rows.append([f"LIST {HOT} of {small:,} (labelSelector)", r, None])

        if args.objects > small:
            rate = asyncio.run(populate(srv, small - 1, args.objects - 1, HOT))
            print(f"populated up to {args.objects} leases ({rate:.0f} creates/s)")
            assert asyncio.run(list_count(srv)) == HOT
            r = run_wrk(srv, list_path, args, auth, f"list-{args.objects}", profile_dir)
            rows.append([f"LIST {HOT} of {args.objects:,} (labelSelector)", r, REFERENCE["list"]])

        create_script = WRK_CREATE.format(token=srv.token, path=LEASES.format(ns="default"))
        r = run_wrk(srv, LEASES.format(ns="default"), args, create_script, "create", profile_dir)
        rows.append(["CREATE lease (POST)", r, REFERENCE["create"]])
        rss = srv.peak_rss_mb()
    finally:
        srv.stop()
    table = []
    for label, r, ref in rows:
        record_summary("api", op=label, rps=r["rps"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"], rss_mb=rss)
        ratio = f"{r['rps'] / ref:.2f}x" if ref else "-"
        table.append([label, r["rps"], r["p50_ms"], r["p99_ms"], r["requests"], r["non2xx"],
                      f"{ref:,.0f}" if ref else "-", ratio])
    print_table(f"HTTPS API via wrk -t{args.threads} -c{args.connections} -d{args.duration}s (keep-alive, TLS)",
                ["operation", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx",
                 "reference req/s (issue, not measured here)", "ratio vs reference"], table)
    return table, rss


# --- authorization on vs off --------------------------------------------------------------------

BENCH_USER_TOKEN = "bench-user-token-0123456789abcdef"


async def grant_bench_user(srv: ServerProc) -> None:
    """The bench user may read and create Leases in NS and default through a ClusterRole and
    RoleBindings (the RBAC path; ``edit`` does not cover coordination.k8s.io)."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    async with srv.session() as api:
        async with api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": NS}}) as r:
            assert r.status == 201, await r.text()
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "bench-leases"},
                "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                           "verbs": ["get", "list", "watch", "create"]}]}
        async with api.post(f"{rbac}/clusterroles", json=role) as r:
            assert r.status == 201, await r.text()
        for ns in (NS, "default"):
            body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "bench-leases", "namespace": ns},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "bench-leases"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bench"}]}
            async with api.post(f"{rbac}/namespaces/{ns}/rolebindings", json=body) as r:
                assert r.status == 201, await r.text()
        async with api.post(LEASES.format(ns=NS), json=lease("bench-get", "single")) as r:
            assert r.status == 201, await r.text()


def authz_bench(args: argparse.Namespace) -> list[list]:
    """GET and CREATE of Leases as a user who is not in system:masters (so every request is
    authorized by RBAC), on a server with ``--authorization-mode AlwaysAllow`` ("off") and with the default
    ``Node,RBAC`` ("on"), one after the other in the same run."""
    tokens = Path(tempfile.mkdtemp(prefix="jp-bench-tokens-")) / "tokens.csv"
    tokens.write_text(f'{BENCH_USER_TOKEN},bench,uid-bench,"bench-users"\n')
    results: dict[str, dict[str, dict]] = {}
    for label, mode in (("off", "AlwaysAllow"), ("on", "Node,RBAC"), ("off again", "AlwaysAllow"),
                        ("on again", "Node,RBAC")):
        if label.endswith("again") and not args.authz_repeat:
            continue
        srv = start_server(agent=False, extra=["--token-auth-file", str(tokens), "--authorization-mode", mode])
        try:
            asyncio.run(grant_bench_user(srv))
            auth = WRK_AUTH.format(token=BENCH_USER_TOKEN)
            results[label] = {
                "get": run_wrk(srv, LEASES.format(ns=NS) + "/bench-get", args, auth, f"authz-{mode}-get", None),
                "create": run_wrk(srv, LEASES.format(ns="default"), args,
                                  WRK_CREATE.format(token=BENCH_USER_TOKEN, path=LEASES.format(ns="default")),
                                  f"authz-{mode}-create", None),
            }
            for op, r in results[label].items():
                if r["non2xx"]:
                    raise SystemExit(f"authorization {label}: {op} answered {r['non2xx']} non-2xx responses")
        finally:
            srv.stop()
    table = []
    for op in ("get", "create"):
        off = [results[k][op]["rps"] for k in results if k.startswith("off")]
        on = [results[k][op]["rps"] for k in results if k.startswith("on")]
        off_rps, on_rps = max(off), max(on)
        for k in results:
            r = results[k][op]
            table.append([f"{op.upper()} authorization {k}", r["rps"], r["p50_ms"], r["p99_ms"], r["requests"],
                          r["non2xx"], ""])
        table.append([f"{op.upper()} cost of authorization (best on vs best off)", on_rps, "", "", "", "",
                      f"{(off_rps - on_rps) / off_rps * 100:+.1f}%"])
    print_table(f"Authorization off (AlwaysAllow) vs on (Node,RBAC), user 'bench' via RoleBinding, wrk "
                f"-t{args.threads} -c{args.connections} -d{args.duration}s",
                ["operation", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx", "cost"], table)
    return table


# --- in-process transport ----------------------------------------------------------------------

async def inproc_bench(args: argparse.Namespace) -> list[list]:
    from jobplane.apiserver.service import ApiService
    from jobplane.client.inproc import InProcessClient
    from jobplane.storage.sqlite import SqliteStore

    tmp = Path(tempfile.mkdtemp(prefix="jp-bench-inproc-"))
    store = SqliteStore(tmp / "state.db")
    await store.start()
    service = ApiService(store)
    await service.ensure_default_namespaces()
    client = InProcessClient(service)
    lease_res = "leases.coordination.k8s.io"
    await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await client.create(lease_res, lease("bench-get", "single"), NS)
    duration = max(2.0, args.duration / 2)

    async def timed(op, label: str) -> list:
        count = 0
        stop_at = time.perf_counter() + duration
        lat: list[float] = []

        async def worker(w: int) -> None:
            nonlocal count
            i = 0
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                await op(w, i)
                lat.append(time.perf_counter() - t0)
                i += 1
                count += 1

        t = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(args.connections)))
        rps = count / (time.perf_counter() - t)
        lat.sort()
        return [label, rps, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, count]

    async def populate_inproc(start: int, stop: int) -> None:
        sem = asyncio.Semaphore(256)

        async def one(i: int) -> None:
            async with sem:
                await client.create(lease_res, lease(f"l-{i}", "hot" if i < HOT else "cold"), NS)

        await asyncio.gather(*(one(i) for i in range(start, stop)))

    rows = []
    try:
        small = min(1000, args.objects)
        await populate_inproc(0, small - 1)

        async def get(w: int, i: int) -> None:
            await client.get(lease_res, "bench-get", NS)

        async def lst(w: int, i: int) -> None:
            res = await client.list(lease_res, NS, label_selector="bucket=hot")
            assert len(res["items"]) == HOT

        async def create(w: int, i: int) -> None:
            body = lease(f"c-{w}-{i}", "x")
            await client.create(lease_res, body, "default")

        rows.append(await timed(get, "GET one lease"))
        rows.append(await timed(lst, f"LIST {HOT} of {small:,} (labelSelector)"))
        if args.objects > small:
            await populate_inproc(small - 1, args.objects - 1)
            rows.append(await timed(lst, f"LIST {HOT} of {args.objects:,} (labelSelector)"))
        rows.append(await timed(create, "CREATE lease"))
    finally:
        await store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--drain", type=float, default=2.0, help="pause between phases (s)")
    p.add_argument("--profile", default=None, help="directory for py-spy raw profiles of the server")
    p.add_argument("--skip-inproc", action="store_true")
    p.add_argument("--skip-authz", action="store_true", help="skip the authorization on/off comparison")
    p.add_argument("--only-authz", action="store_true", help="run only the authorization on/off comparison")
    p.add_argument("--authz-repeat", action="store_true", help="run off/on twice each (noise check)")
    args = p.parse_args()
    print_machine()
    if args.only_authz:
        authz_bench(args)
        return
    http_rows, rss = http_bench(args)
    print_table("Server peak RSS (VmHWM) after the HTTPS runs", ["metric", "value", "reference (issue)", "ratio"],
                [["peak RSS MiB", rss, f"{REFERENCE['rss_mb']:.0f} MB", f"{rss / REFERENCE['rss_mb']:.2f}x"]])
    if not args.skip_authz:
        authz_bench(args)
    if not args.skip_inproc:
        rows = asyncio.run(inproc_bench(args))
        http_by_label = {r[0].split(" (")[0]: r[1] for r in http_rows}
        table = []
        for label, rps, p50, p99, n in rows:
            h = next((v for k, v in http_by_label.items() if label.startswith(k)), None)
            table.append([label, rps, p50, p99, n, f"{rps / h:.2f}x" if h else "-"])
        print_table(f"In-process transport (InProcessClient(ApiService(SqliteStore)), {args.connections} "
                    "concurrent tasks, one asyncio process)",
                    ["operation", "req/s", "p50 call ms", "p99 call ms", "requests", "ratio vs HTTPS (same run)"], table)
        print("(call ms: time inside one awaited call; calls that never suspend run back to back, so this is "
              "service time, not queueing latency)")


if __name__ == "__main__":
    main()
