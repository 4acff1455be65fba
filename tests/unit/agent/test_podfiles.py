"""A new pod's files made the short way (nothing there to check or replace) come out as the
general way makes them; and when a worker may skip reading records (worker.records_possible)."""

import os
from pathlib import Path

import pytest

from jobplane.agent import hosts, projection, volumes
from jobplane.agent.volumes import volume_dirs
from jobplane.agent.worker import records_possible

FILES = {"token": (b"T", 0o644), "ca.crt": (b"C", 0o644), "namespace": (b"ns", 0o600), "d/e/f": (b"deep", 0o644)}
POD = {"spec": {"volumes": [
    {"name": "kube-api-access-x", "projected": {"sources": []}},
    {"name": "scratch", "emptyDir": {}},
    {"name": "mem", "emptyDir": {"medium": "Memory"}},
    {"name": "cm", "configMap": {"name": "c"}},
]}}


def tree(root: Path) -> dict[str, object]:
    """Every entry below ``root``: a link's target, a file's bytes and mode, a directory's mode,
    with the timestamped directory's name made uniform (in ``root``; below it, left out)."""
    stamp = os.readlink(root / "..data") if os.path.islink(root / "..data") else None
    out: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(root):
        if stamp is None and os.path.islink(Path(dirpath) / "..data"):
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root)).replace(stamp, "STAMP") if stamp else str(path.relative_to(root))
            if path.is_symlink():
                link = os.readlink(path)
                out[rel] = ("link", link.replace(stamp, "STAMP") if stamp else link)
            elif path.is_dir():
                out[rel] = ("dir", path.stat().st_mode & 0o7777)
            else:
                out[rel] = ("file", path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def test_a_new_volume_is_written_as_the_atomic_writer_writes_it(tmp_path):
    general, short = tmp_path / "general", tmp_path / "short"
    assert projection.write_atomic(general, FILES)
    short.mkdir()
    assert projection.write_atomic(short, FILES, new=True)
    assert tree(short) == tree(general)
    assert os.readlink(short / "token") == "..data/token" and (short / "d" / "e" / "f").read_bytes() == b"deep"
    # an update of a volume made the short way goes the general way: ..data swapped, the old set gone
    assert not projection.write_atomic(short, FILES)
    assert projection.write_atomic(short, {"token": (b"T2", 0o644)})
    assert (short / "token").read_bytes() == b"T2" and not os.path.lexists(short / "ca.crt")
    assert len([p for p in short.iterdir() if p.name.startswith("..")]) == 2


def test_new_volume_dirs_are_the_same_directories(tmp_path):
    general = volume_dirs(POD, tmp_path / "g" / "pod", run_dir=tmp_path / "g" / "run")
    for d in ("pod", "run"):
        (tmp_path / "s" / d).mkdir(parents=True)
    short = volume_dirs(POD, tmp_path / "s" / "pod", run_dir=tmp_path / "s" / "run", new=True)
    assert {k: str(v.relative_to(tmp_path / "g")) for k, v in general.items()} == \
        {k: str(v.relative_to(tmp_path / "s")) for k, v in short.items()}
    assert tree(tmp_path / "g") == tree(tmp_path / "s")
    assert short["mem"].parent.parent == tmp_path / "s" / "run" and short["scratch"].stat().st_mode & 0o777 == 0o777


def test_a_new_hosts_file(tmp_path):
    assert hosts.write_in_place(tmp_path / "a", "x y\n", new=True)
    assert hosts.write_in_place(tmp_path / "b", "x y\n")
    assert tree(tmp_path) == {"a": ("file", b"x y\n", 0o644 & ~_umask()), "b": ("file", b"x y\n", 0o644 & ~_umask())}
    with pytest.raises(FileExistsError):  # never written over: the caller was wrong about the directory
        hosts.write_in_place(tmp_path / "a", "z\n", new=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(("uid", "at_start", "completed", "unreported", "want"), [
    ("u1", None, set(), set(), True),  # the directories were not listed: read, as always
    ("u1", {"u1"}, set(), set(), True),  # its directory was there when the agent started
    ("u1", {"u2"}, set(), set(), False),  # a pod first seen by this agent: nothing to read
    ("u1", set(), {"u1"}, set(), True),  # a worker of this agent finished it
    ("u1", set(), set(), {"u1"}, True),  # a worker of this agent ended without a final status (crashed)
    ("u1", set(), {"u2"}, {"u3"}, False),
])
def test_records_possible(uid, at_start, completed, unreported, want):
    assert records_possible(uid, at_start, completed, unreported) is want


@pytest.mark.parametrize("with_rm", [True, False])
def test_remove_pod_trees_removes_each_tree_and_follows_no_link(tmp_path, monkeypatch, with_rm):
    if not with_rm:  # no rm on this machine: the same removal in the process
        monkeypatch.setattr(volumes, "RM", None)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    trees = []
    for i in range(3):
        root = tmp_path / f"pod{i}"
        (root / "volumes").mkdir(parents=True)
        projection.write_atomic(root / "volumes" / "v", FILES)
        (root / "volumes" / "escape").symlink_to(outside)
        (root / "-n").mkdir()  # a name rm could take for an option
        trees.append((root, False))
    trees.append((tmp_path / "never-made", False))
    volumes.remove_pod_trees(trees)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]
    assert (outside / "keep").read_text() == "k"


def test_remove_pod_trees_falls_back_when_rm_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(volumes, "RM", "/bin/false")
    (tmp_path / "pod" / "x").mkdir(parents=True)
    volumes.remove_pod_trees([(tmp_path / "pod", False)])
    assert not (tmp_path / "pod").exists()


def test_remove_pod_trees_reads_the_mount_table_once_for_all_that_may_hold_mounts(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(volumes, "unmount_all", lambda *dirs: seen.append(dirs))
    trees = [(tmp_path / "run" / "a", True), (tmp_path / "pods" / "a", True), (tmp_path / "run" / "b", False)]
    for path, _ in trees:
        (path / "x").mkdir(parents=True)
    volumes.remove_pod_trees(trees)
    assert seen == [(tmp_path / "run" / "a", tmp_path / "pods" / "a")]
    assert not any(path.exists() for path, _ in trees)
    volumes.remove_pod_trees([])
    assert len(seen) == 1


@pytest.mark.parametrize("sandboxed", [True, False])
@pytest.mark.parametrize("run_dir", [True, False])  # a runtime directory, or --runtime-dir off
def test_a_pod_made_from_a_spare_has_the_same_tree(tmp_path, sandboxed, run_dir):
    """A fresh pod that takes a spare directory (agent/spares.py) ends up with the tree, modes
    included, of one made without, once its first container's log is made: from the spare's
    (renamed) or by the supervisor as for any pod."""
    from types import SimpleNamespace

    from agent_fakes import make_pod

    from jobplane.agent.spares import SparePool, claim_first_log, is_spare
    from jobplane.agent.supervisor import LOG_MODE
    from jobplane.agent.worker import PodWorker, WorkerConfig
    from jobplane.clock import Clock
    from jobplane.podlogs import log_path

    pod = make_pod(volumes=POD["spec"]["volumes"])
    trees = []
    for how in ("plain", "spare"):
        pods = tmp_path / how / "pods"
        pods.mkdir(parents=True)
        config = WorkerConfig(pods_dir=pods, node_name="n1",
                              run_pods_dir=tmp_path / how / "run" if run_dir else None)
        if how == "spare":
            config.spares = SparePool(pods, "n1", with_tmp=sandboxed, size=1)
            config.spares.refill()
            assert config.spares.ready == 1
        w = PodWorker(None, pod, SimpleNamespace(), Clock(), config, fresh=True)
        text = ("127.0.0.1 localhost\n", "p\n") if sandboxed else (None, None)
        volumes, state = w._make_pod_files(False, {}, None, [("kube-api-access-x", None, FILES)], *text, True)
        assert state is not None and state[1] == 0
        os.close(state[0])
        if how == "spare":
            assert config.spares.taken == 1 and not any(is_spare(p.name) for p in pods.iterdir())
        log = log_path(pods, "uid-p", "main", 0)
        assert claim_first_log(pods / "uid-p", log) is (how == "spare")  # as the worker, before the start
        os.makedirs(os.path.dirname(log), exist_ok=True)  # as the supervisor's hand_over
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, LOG_MODE))
        vol = volumes["kube-api-access-x"]
        trees.append({"pods": tree(pods), "volume": tree(vol), "run": tree(tmp_path / how / "run") if run_dir else None,
                      "pod mode": (pods / "uid-p").stat().st_mode})
        assert ("tmp" in os.listdir(pods / "uid-p")) is sandboxed
    assert trees[0] == trees[1]


@pytest.mark.parametrize(("case", "inline"), [
    ("spare, token volume only", True),
    ("no spare ready", False),
    ("an emptyDir", False),
    ("a hostPath", False),
    ("spare without tmp/ for a sandboxed pod", False),
    ("--runtime-dir off", False),
    ("not fresh", False),
])
def test_files_in_memory_only_when_no_inode_is_made_on_the_disk(tmp_path, case, inline):
    """Whether a pod's set-up may run on the event loop (with a quiet node): it takes a spare
    and writes everything else to the runtime directory in memory."""
    from types import SimpleNamespace

    from agent_fakes import make_pod

    from jobplane.agent.spares import SparePool
    from jobplane.agent.worker import PodWorker, WorkerConfig
    from jobplane.clock import Clock

    vols = [{"name": "kube-api-access-x", "projected": {"sources": []}}, {"name": "c", "configMap": {"name": "c"}}]
    if case == "an emptyDir":
        vols.append({"name": "e", "emptyDir": {}})
    if case == "a hostPath":
        vols.append({"name": "h", "hostPath": {"path": "/etc"}})
    pods = tmp_path / "pods"
    pods.mkdir()
    config = WorkerConfig(pods_dir=pods, node_name="n1",
                          run_pods_dir=None if case == "--runtime-dir off" else tmp_path / "run")
    config.spares = SparePool(pods, "n1", with_tmp=case != "spare without tmp/ for a sandboxed pod", size=1)
    if case != "no spare ready":
        config.spares.refill()
    runtime = SimpleNamespace(sandbox=SimpleNamespace(available=True), runs_images=False)
    w = PodWorker(None, make_pod(volumes=vols), runtime, Clock(), config, fresh=case != "not fresh")
    assert w._files_in_memory() is inline
