"""Per-pod file-system work, by where it lands: CPU per pod of the files the agent and the node
supervisor make for a short Job pod (the kube-api-access volume's atomic writer, /etc/hosts and
/etc/hostname, /tmp, state.json, the container's run directory, its log and ``.done``) and their
removal, with everything on the data disk against the runtime files on tmpfs.

Usage: .venv/bin/python bench/bench_podfiles.py [--pods 500] [--rounds 3] [--disk DIR] [--tmpfs DIR]

Layouts, alternating within each round:
  disk       everything under DIR/pods/<uid> (jobplane before the runtime directory)
  split      volumes, hosts files and run state under the tmpfs directory; state.json, logs, /tmp on
             disk; each file made and removed the general way (check, compare, replace; one
             ``shutil.rmtree`` per pod)
  split-new  the same files, made the way the worker makes a new pod's (``new=True``: nothing to
             check) and the runtime directories removed in batches of ``--batch`` by
             ``volumes.remove_pod_trees`` (one ``rm`` process), as the agent does (§19c)
  tmpfs      everything on tmpfs (the floor)
CPU is the calling thread's (``time.thread_time``) plus that of the processes it waited for (rm):
what the agent's file thread and the supervisor spend.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from jobplane.agent import hosts, projection, volumes

TOKEN = b"eyJhbGciOiJFUzI1NiJ9." + b"x" * 700
CA = b"-----BEGIN CERTIFICATE-----\n" + b"y" * 600 + b"\n-----END CERTIFICATE-----\n"
FILES: projection.Payload = {"token": (TOKEN, 0o644), "ca.crt": (CA, 0o644), "namespace": (b"default", 0o644)}
POD = {"metadata": {"name": "pi-0-abcde", "namespace": "default"}, "spec": {"hostname": "pi-0"}}


def make_pod(disk: Path, run: Path, uid: str, new: bool = False) -> None:
    """What the worker's ``_make_pod_files`` and the supervisor's start do for one pod."""
    pod_dir, run_dir = disk / uid, run / uid
    pod_dir.mkdir()
    if run_dir != pod_dir:
        run_dir.mkdir()
    vol = run_dir / "volumes" / "kube-api-access-abcde"
    if new:
        vol.parent.mkdir()
        vol.mkdir()
    else:
        vol.mkdir(parents=True)
    projection.write_atomic(vol, FILES, new=new)
    tmp = pod_dir / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    hosts.write_in_place(run_dir / "etc-hosts", hosts.hosts_file(POD, "10.0.0.1", [], []), new=new)
    hosts.write_in_place(run_dir / "etc-hostname", "pi-0\n", new=new)
    fd = os.open(pod_dir / "state.json", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.pwrite(fd, b'{"node": "n", "containers": []}'.ljust(400), 0)
    os.close(fd)
    state = run_dir / "containers" / "c" / "0"
    os.makedirs(state)
    os.makedirs(pod_dir / "logs" / "c")
    os.close(os.open(pod_dir / "logs" / "c" / "0.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640))
    tmp_record = state / "pid.json.tmp"
    tmp_record.write_bytes(b'{"pid": 1, "start": "1"}')
    os.rename(tmp_record, state / "pid.json")
    os.close(os.open(pod_dir / "logs" / "c" / "0.done", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))


def remove_pod(disk: Path, run: Path, uid: str) -> None:
    if run != disk:
        shutil.rmtree(run / uid)
    shutil.rmtree(disk / uid)


def cpu() -> float:
    """This thread's CPU time and that of the child processes waited for (rm)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def one(layout: str, disk_root: Path, tmpfs_root: Path, pods: int, batch: int) -> tuple[float, float]:
    disk = Path(tempfile.mkdtemp(dir=disk_root if layout != "tmpfs" else tmpfs_root))
    run = Path(tempfile.mkdtemp(dir=tmpfs_root)) if layout.startswith("split") else disk
    new = layout == "split-new"
    try:
        t0 = cpu()
        for i in range(pods):
            make_pod(disk, run, f"uid-{i}", new)
        t1 = cpu()
        if new:  # the runtime directories in batches when their pods finish; the rest at deletion
            for first in range(0, pods, batch):
                volumes.remove_pod_trees([(run / f"uid-{i}", False) for i in range(first, min(first + batch, pods))])
            for i in range(pods):
                shutil.rmtree(disk / f"uid-{i}")
        else:
            for i in range(pods):
                remove_pod(disk, run, f"uid-{i}")
        t2 = cpu()
    finally:
        shutil.rmtree(disk, ignore_errors=True)
        if run != disk:
            shutil.rmtree(run, ignore_errors=True)
    return (t1 - t0) / pods * 1e3, (t2 - t1) / pods * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--disk", type=Path, default=Path(__file__).resolve().parent.parent / ".bench-podfiles")
    ap.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"))
    ap.add_argument("--batch", type=int, default=150, help="runtime directories removed at once (split-new)")
    args = ap.parse_args()
    args.disk.mkdir(exist_ok=True)
    print(f"load {' '.join(open('/proc/loadavg').read().split()[:3])}; {args.pods} pods a round; "
          f"disk {args.disk}, tmpfs {args.tmpfs}")
    layouts = ("disk", "split", "split-new", "tmpfs")
    made: dict[str, list[float]] = {k: [] for k in layouts}
    removed: dict[str, list[float]] = {k: [] for k in layouts}
    for r in range(args.rounds):
        order = layouts if r % 2 == 0 else tuple(reversed(layouts))
        for layout in order:
            m, d = one(layout, args.disk, args.tmpfs, args.pods, args.batch)
            made[layout].append(m)
            removed[layout].append(d)
    try:
        args.disk.rmdir()
    except OSError:
        pass
    print("layout     create ms CPU/pod (rounds)            remove ms CPU/pod   total median")
    for layout in layouts:
        print(f"{layout:9}  {' '.join(f'{x:.3f}' for x in made[layout]):32}  "
              f"{' '.join(f'{x:.3f}' for x in removed[layout]):20}  "
              f"{statistics.median(made[layout]) + statistics.median(removed[layout]):.3f}")
    print(f"load {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
