"""The node supervisor alone: N containers (sandboxed ``true`` by default) started over its
socket with C in flight, as the agent starts them, without the API server in the way.

Measures per container: the supervisor's own CPU and the CPU of everything it reaped (its
waiters, bwrap, the command; of which the live waiters' own), their minor page faults
(copy-on-write after each fork shows here), the start round trip (request sent -> reply read)
and start -> exit notified. As root, also the CPU of a cgroup of the benchmark's own, less the
benchmark's: it counts every process of the run however it ends (the /proc sums miss some,
more with one container per waiter: bench/RESULTS.md §19b). ``--base-script`` runs another
``supervisor.py`` (e.g. main's) in the same run, alternating which goes first each round, so
the two see the same load. ``--floor`` adds the same commands spawned by a bare loop that is a
child subreaper, as the supervisor is (a sandbox's init and the command re-parent to it when
bwrap exits first; ``xargs`` never counts them): what the supervisor and waiters add is the
difference.

Usage: .venv/bin/python bench/bench_supervisor.py [--containers 400] [--concurrency 20]
           [--rounds 3] [--base-script /work/main/src/jobplane/agent/supervisor.py] [--no-sandbox]
           [--floor] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from benchlib import CpuGroup  # noqa: E402

from jobplane.agent import sandbox as sbx  # noqa: E402

HERE_SCRIPT = str(Path(__file__).resolve().parent.parent / "src" / "jobplane" / "agent" / "supervisor.py")
TICK = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()  # fields[0] is field 3 (state): field n is fields[n - 3]


def proc_stat(pid: int) -> dict[str, float]:
    """CPU seconds and minor faults of ``pid`` itself, and of its children: those it reaped,
    plus those still alive (waiters kept between containers) with what they reaped."""
    fields = _fields(pid)
    out = {"cpu": (int(fields[11]) + int(fields[12])) / TICK, "ccpu": (int(fields[13]) + int(fields[14])) / TICK,
           "minflt": int(fields[7]), "cminflt": int(fields[8]), "wcpu": 0.0}
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    for kid in kids:
        try:
            k = _fields(kid)
        except OSError:
            continue
        out["ccpu"] += sum(int(x) for x in k[11:15]) / TICK
        out["wcpu"] += (int(k[11]) + int(k[12])) / TICK  # a live waiter's own (not what it reaped)
        out["cminflt"] += int(k[7]) + int(k[8])
    return out


def container_spec(root: Path, i: int, argv: list[str], support: sbx.SandboxSupport | None) -> dict:
    pod = root / "pods" / f"p{i}"
    cwd = "/"
    executable, sandboxed = argv[0], False
    if support is not None:
        (pod / "tmp").mkdir(parents=True)
        (pod / "hosts").write_text("127.0.0.1 localhost\n")
        (pod / "hostname").write_text(f"p{i}\n")
        spec = sbx.SandboxSpec(hostname=f"p{i}", hosts_file=str(pod / "hosts"), hostname_file=str(pod / "hostname"),
                               tmp_dir=str(pod / "tmp"), hidden=(str(root),))
        argv = sbx.bwrap_argv(support, spec, argv, cwd)
        executable, sandboxed = argv[0], True
    return {"argv": argv, "executable": executable, "env": {"PATH": "/usr/bin:/bin"}, "cwd": cwd,
            "sandbox": sandboxed, "state_dir": str(pod / "containers" / "c" / "0"),
            "log": str(pod / "logs" / "c" / "0.log"), "done": str(pod / "logs" / "c" / "0.done")}


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def floor_child(spec_file: str, conc: int) -> None:
    """The floor (``--floor``), in a process of its own: the same commands spawned straight from
    a small loop, ``conc`` at a time, by a child subreaper that reaps everything below it (a
    sandbox's init and the command re-parent to it when bwrap exits first, as they do to the
    supervisor; a plain ``xargs`` never counts their CPU). Prints its own and its children's CPU."""
    import ctypes

    specs = json.loads(Path(spec_file).read_text())
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    r0, s0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    outer: set[int] = set()
    nxt = 0
    while nxt < len(specs) or outer:
        while nxt < len(specs) and len(outer) < conc:
            sp = specs[nxt]
            nxt += 1
            outer.add(os.posix_spawn(sp["executable"], sp["argv"], sp["env"], setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]))
        pid, _ = os.wait()
        outer.discard(pid)
    wall = time.perf_counter() - t0
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()
    r1, s1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": wall, "self": s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime,
                      "children": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
                      "cminflt": r1.ru_minflt - r0.ru_minflt}))


def run_floor(n: int, conc: int, argv: list[str], support: sbx.SandboxSupport | None, where: str | None,
              group: CpuGroup | None = None) -> dict:
    root = Path(tempfile.mkdtemp(prefix="jp-supbench-", dir=where))
    try:
        spec_file = root / "specs.json"
        spec_file.write_text(json.dumps([container_spec(root, i, argv, support) for i in range(n)]))
        cg0, own0 = (group.usage(), _self_cpu()) if group else (0.0, 0.0)
        out = subprocess.run([sys.executable, __file__, "--floor-child", str(spec_file), str(conc)],
                             stdout=subprocess.PIPE, check=True, timeout=600)
        cg = (group.usage() - cg0 - (_self_cpu() - own0)) * 1000 / n if group else float("nan")
        res = json.loads(out.stdout)
        return {"rate": n / res["wall"], "sup_ms": res["self"] * 1000 / n, "children_ms": res["children"] * 1000 / n,
                "waiters_ms": 0.0, "cgroup_ms": cg, "sup_faults": 0.0, "children_faults": res["cminflt"] / n,
                "start_p50": 0.0, "start_p99": 0.0, "exit_p50": 0.0}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_one(script: str, n: int, conc: int, argv: list[str], support: sbx.SandboxSupport | None,
            profile: str | None = None, where: str | None = None, group: CpuGroup | None = None) -> dict:
    root = Path(tempfile.mkdtemp(prefix="jp-supbench-", dir=where))
    try:
        specs = [container_spec(root, i, argv, support) for i in range(n)]
        data = root / "sup"
        data.mkdir()
        with open(data / "supervisor.log", "ab") as errlog:
            out = subprocess.run([sys.executable, "-I", "-S", script, str(data)], stdout=subprocess.PIPE,
                                 stderr=errlog, timeout=30, start_new_session=True)
        assert out.stdout.strip() == b"ready", out
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(data / "supervisor.sock"))
        f = sock.makefile("rb")
        hello = json.loads(f.readline())
        sup = hello["pid"]
        sock.setblocking(False)
        spy = None
        if profile:  # py-spy on the supervisor (collapsed stacks; its own loop only)
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(sup), "-r", "1000",
                                    "-f", "raw", "-o", profile, "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        before = proc_stat(sup)
        cg0, own0 = (group.usage(), _self_cpu()) if group else (0.0, 0.0)
        sent: dict[int, float] = {}
        replied: dict[int, float] = {}
        by_pid: dict[int, int] = {}
        ended: dict[int, float] = {}
        nxt = 0
        buf = b""
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        t0 = time.perf_counter()

        def send_more() -> None:
            nonlocal nxt
            batch = b""
            while nxt < n and nxt - len(ended) < conc:
                sent[nxt] = time.perf_counter()
                batch += json.dumps({"op": "start", "id": nxt, **specs[nxt]}).encode() + b"\n"
                nxt += 1
            if batch:
                sock.setblocking(True)
                sock.sendall(batch)
                sock.setblocking(False)

        send_more()
        while len(ended) < n:
            sel.select(30)
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            assert chunk, "supervisor closed the connection"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.perf_counter()
            for line in lines:
                msg = json.loads(line)
                if "id" in msg:
                    assert "pid" in msg, msg
                    replied[msg["id"]] = now
                    by_pid[msg["pid"]] = msg["id"]
                elif msg.get("op") == "exit":
                    ended[by_pid[msg["pid"]]] = now
            send_more()
        wall = time.perf_counter() - t0
        after = proc_stat(sup)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        sock.close()
        for _ in range(500):  # it exits once no agent and no container is left
            if not os.path.exists(f"/proc/{sup}"):
                break
            time.sleep(0.01)
        # everything since `before`, the waiters' and the supervisor's exits included, less this client
        cg = (group.usage() - cg0 - (_self_cpu() - own0)) * 1000 / n if group else float("nan")
        start_ms = [(replied[i] - sent[i]) * 1000 for i in range(n)]
        exit_ms = [(ended[i] - sent[i]) * 1000 for i in range(n)]
        return {"rate": n / wall,
                "sup_ms": (after["cpu"] - before["cpu"]) * 1000 / n,
                "children_ms": (after["ccpu"] - before["ccpu"]) * 1000 / n,
                "waiters_ms": (after["wcpu"] - before["wcpu"]) * 1000 / n, "cgroup_ms": cg,
                "sup_faults": (after["minflt"] - before["minflt"]) / n,
                "children_faults": (after["cminflt"] - before["cminflt"]) / n,
                "start_p50": statistics.median(start_ms), "start_p99": sorted(start_ms)[int(0.99 * (n - 1))],
                "exit_p50": statistics.median(exit_ms)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--containers", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--base-script", default=None, help="another supervisor.py to run beside this checkout's")
    p.add_argument("--no-sandbox", action="store_true")
    p.add_argument("--command", default="/bin/true")
    p.add_argument("--dir", default=None, help="where the pods' and the supervisor's files go (default: $TMPDIR)")
    p.add_argument("--profile", default=None, help="py-spy the supervisor: FILE.<variant>.<round> (raw stacks)")
    p.add_argument("--floor", action="store_true",
                   help="also run the floor each round: the same commands spawned by a bare subreaper loop")
    p.add_argument("--no-cgroup", action="store_true", help="do not measure CPU in a cgroup of the benchmark's own")
    p.add_argument("--floor-child", nargs=2, metavar=("SPECS", "CONC"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_child:
        floor_child(args.floor_child[0], int(args.floor_child[1]))
        return
    support = None if args.no_sandbox else sbx.detect()
    if support is not None and not support.available:
        sys.exit(f"no sandbox: {support.reason}")
    group = None if args.no_cgroup else CpuGroup.create()
    variants = [("new", HERE_SCRIPT)] + ([("base", args.base_script)] if args.base_script else []) + (
        [("floor", "")] if args.floor else [])
    print(f"load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}; CPU also counted in "
          f"{group.path if group else 'no cgroup'}", flush=True)
    rows: dict[str, list[dict]] = {name: [] for name, _ in variants}
    try:
        for r in range(args.rounds):
            for name, script in variants if r % 2 else variants[::-1]:
                if name == "floor":
                    res = run_floor(args.containers, args.concurrency, args.command.split(), support, args.dir, group)
                else:
                    res = run_one(script, args.containers, args.concurrency, args.command.split(), support,
                                  f"{args.profile}.{name}.{r + 1}" if args.profile else None, args.dir, group)
                rows[name].append(res)
                print(f"round {r + 1} {name:4}: {res['rate']:6.0f} containers/s  supervisor {res['sup_ms']:.2f} ms CPU "
                      f"+ reaped {res['children_ms']:.2f} (waiters' own {res['waiters_ms']:.2f}) ms per container, cgroup "
                      f"{res['cgroup_ms']:.2f} ms; faults {res['sup_faults']:.0f} + "
                      f"{res['children_faults']:.0f}; start p50 {res['start_p50']:.2f} p99 {res['start_p99']:.2f} ms; "
                      f"start->exit p50 {res['exit_p50']:.2f} ms; load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if group is not None:
            group.close()
    for name, rs in rows.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        print(f"median {name:4}: {med['rate']:.0f}/s, CPU {med['sup_ms']:.2f} + {med['children_ms']:.2f} = "
              f"{med['sup_ms'] + med['children_ms']:.2f} ms/container (cgroup {med['cgroup_ms']:.2f}), faults {med['sup_faults']:.0f} + "
              f"{med['children_faults']:.0f}, start p50 {med['start_p50']:.2f} ms, start->exit p50 "
              f"{med['exit_p50']:.2f} ms")
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
