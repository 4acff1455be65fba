"""Image references, pull policy and registry credentials (``agent/images.py``) and the
engine runtime's pure parts (``agent/engine.py``): names, entrypoints, the run command line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from jobplane.agent import images
from jobplane.agent.engine import (
    ENGINE_FILE,
    EngineRuntime,
    ImageSpec,
    _engine_time,
    container_name,
    entrypoint_argv,
    pod_sandbox_name,
    uid_of,
)
from jobplane.agent.sandbox import Mount
from jobplane.clock import FakeClock


@pytest.mark.parametrize(("image", "pullable"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/redis:7", "docker.io/library/redis:7"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"),
    ("localhost/bb:1", "localhost/bb:1"),
    ("registry.example.com:5000/team/app:v2", "registry.example.com:5000/team/app:v2"),
    ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64),
    ("non-existing-repo/non-existing-image:example", "docker.io/non-existing-repo/non-existing-image:example"),
])
def test_references_normalize_as_docker_does(image, pullable):
    assert images.parse(image).pullable == pullable


@pytest.mark.parametrize("image", ["", "Busybox", "busy box", "a" * 64, "x:", "-x", "x::1"])
def test_invalid_references(image):
    with pytest.raises(images.InvalidImage, match="couldn't parse image reference"):
        images.parse(image)


def test_uppercase_says_lowercase():
    with pytest.raises(images.InvalidImage, match="must be lowercase"):
        images.parse("Busybox:1")


@pytest.mark.parametrize(("container", "policy"), [
    ({"image": "busybox"}, "Always"),
    ({"image": "busybox:latest"}, "Always"),
    ({"image": "busybox:1.36"}, "IfNotPresent"),
    ({"image": "busybox@sha256:" + "b" * 64}, "IfNotPresent"),
    ({"image": "busybox", "imagePullPolicy": "Never"}, "Never"),
])
def test_pull_policy_defaults(container, policy):
    assert images.pull_policy(container) == policy


def test_should_pull():
    assert images.should_pull("Always", True)
    assert images.should_pull("IfNotPresent", False)
    assert not images.should_pull("IfNotPresent", True)
    assert not images.should_pull("Never", False)


def _secret(kind: str, doc: dict) -> dict:
    return {"type": kind, "data": {(".dockerconfigjson" if "json" in kind else ".dockercfg"):
                                   base64.b64encode(json.dumps(doc).encode()).decode()}}


def test_docker_config_merges_pull_secrets_first_wins():
    one = _secret("kubernetes.io/dockerconfigjson", {"auths": {"r.example": {"auth": "AAA"}}})
    two = _secret("kubernetes.io/dockerconfigjson", {"auths": {"r.example": {"auth": "BBB"},
                                                               "q.example": {"username": "u", "password": "p"}}})
    old = _secret("kubernetes.io/dockercfg", {"o.example": {"auth": "CCC"}})
    merged = images.docker_config([one, two, old, {"data": {}}])
    assert merged == {"auths": {"r.example": {"auth": "AAA"},
                                "q.example": {"username": "u", "password": "p",
                                              "auth": base64.b64encode(b"u:p").decode()},
                                "o.example": {"auth": "CCC"}}}
    assert images.docker_config([]) is None


def test_names_carry_the_pod_uid():
    uid = "8cc6e053-1727-4a17-a6ad-1dca8daed354"
    assert uid_of(container_name("main", "job-x-abc", "default", uid, 2)) == uid
    assert uid_of(pod_sandbox_name("job-x-abc", "default", uid)) == uid
    assert uid_of("something-else") is None


def test_entrypoint_rules():
    assert entrypoint_argv("podman", [], []) == ([], [])
    assert entrypoint_argv("podman", [], ["a"]) == ([], ["a"])
    assert entrypoint_argv("podman", ["/bin/sh", "-c"], ["x"]) == (["--entrypoint", '["/bin/sh", "-c"]'], ["x"])
    assert entrypoint_argv("docker", ["/bin/sh", "-c"], ["x"]) == (["--entrypoint", "/bin/sh"], ["-c", "x"])


def test_engine_times():
    assert _engine_time("0001-01-01 00:00:00 +0000 UTC") is None
    assert _engine_time("2026-12-04 08:41:54.5 +0000 UTC") == pytest.approx(1796373714.5)
    assert _engine_time("2026-12-04T08:41:54.5Z") == pytest.approx(1796373714.5)


def test_run_argv_keeps_values_out_of_the_command_line(tmp_path: Path):
    rt = EngineRuntime(FakeClock(), "podman", data_dir=tmp_path, binary="/usr/bin/podman")
    spec = ImageSpec(image="localhost/bb:1", image_ref="abc123", command=["sh", "-c"], args=["echo $SECRET"],
                     env={"SECRET": "hunter2", "PATH": "/bin"}, name="k8s_main_p_default_u_0",
                     pod_name="k8s_POD_p_default_u", hostname="p", labels={"io.kubernetes.pod.uid": "u"},
                     mounts=[Mount("/var/x", "/data", True)], workdir="/w", memory=50 * 2**20, cpus=0.5,
                     user="1000:1000", groups=[5])
    argv, env = rt.run_argv(spec)
    assert "hunter2" not in " ".join(argv) and env["SECRET"] == "hunter2"
    assert ["--env", "SECRET"] == argv[argv.index("SECRET") - 1:argv.index("SECRET") + 1]
    assert "PATH=/bin" in argv  # a variable the client itself reads travels on the command line
    assert argv[-4:] == ["--entrypoint", '["sh", "-c"]', "abc123", "echo $SECRET"]
    for flag in (["--pod", "k8s_POD_p_default_u"], ["--volume", "/var/x:/data:ro"], ["--workdir", "/w"],
                 ["--memory", str(50 * 2**20)], ["--cpus", "0.5"], ["--user", "1000:1000"], ["--group-add", "5"],
                 ["--pull", "never"]):
        i = argv.index(flag[0])
        assert argv[i:i + 2] == flag
    with pytest.raises(OSError):
        rt.run_argv(ImageSpec(**{**spec.__dict__, "mounts": [Mount("/var/a:b", "/x")]}))


def test_pull_hands_credentials_through_a_private_file_removed_after(tmp_path: Path):
    """``imagePullSecrets`` reach the engine as ``--authfile`` (podman) or ``DOCKER_CONFIG``
    (docker): a 0600 file under the agent's data dir, gone once the pull is over."""
    import asyncio
    import os
    import stat
    import sys

    record = tmp_path / "record.json"
    fake = tmp_path / "fake-engine"
    fake.write_text(f"""#!{sys.executable}
import json, os, stat, sys
args = sys.argv[1:]
if args[0] == "pull":
    path = args[args.index("--authfile") + 1] if "--authfile" in args else os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    json.dump({{"args": args, "path": path, "mode": stat.S_IMODE(os.stat(path).st_mode),
               "doc": json.load(open(path))}}, open({str(record)!r}, "w"))
elif args[:2] == ["image", "inspect"]:
    print("abc123")
""")
    fake.chmod(0o755)
    auth = {"auths": {"r.example": {"auth": "dTpw"}}}
    for engine in ("podman", "docker"):
        rt = EngineRuntime(FakeClock(), engine, data_dir=tmp_path / engine, binary=str(fake))
        assert asyncio.run(rt.pull("r.example/app:1", auth)) == "abc123"
        seen = json.loads(record.read_text())
        assert seen["doc"] == auth and seen["mode"] == 0o600
        assert seen["path"].startswith(str(tmp_path / engine / "engine"))
        assert not os.path.exists(seen["path"])
        assert not [n for n in os.listdir(tmp_path / engine / "engine") if n.startswith("auth-")]
        assert stat.S_IMODE(os.stat(tmp_path / engine / "engine").st_mode) == 0o700
        assert seen["args"][-1] == "r.example/app:1"


def test_runtime_selection(monkeypatch, tmp_path: Path):
    from jobplane.agent import engine

    answers = {"podman": (None, "podman is not installed"), "docker": ("27.1", "")}
    monkeypatch.setattr(engine, "probe", lambda name, binary=None: answers[name])
    assert engine.select("host", FakeClock(), tmp_path) == (None, "host")
    rt, _ = engine.select("auto", FakeClock(), tmp_path)
    assert rt is not None and rt.engine == "docker" and rt.runtime_version == "docker://27.1"
    with pytest.raises(RuntimeError, match="--runtime podman: podman is not installed"):
        engine.select("podman", FakeClock(), tmp_path)
    answers["docker"] = (None, "docker does not answer: Cannot connect to the Docker daemon")
    rt, why = engine.select("auto", FakeClock(), tmp_path)
    assert rt is None and "podman is not installed" in why and "Cannot connect" in why


@pytest.mark.parametrize(("earlier", "removed"), [
    ("nothing", True),      # an attempt that never got as far as its client: its leftover goes
    ("pid.json", False),    # the earlier waiter started it: followed, not removed under it
    ("exit.json", False),
    ("claim", False),       # a live waiter holds the claim: it may be starting it right now
])
def test_a_retried_start_removes_a_leftover_only_when_no_waiter_owns_the_run(tmp_path: Path, monkeypatch,
                                                                             earlier, removed):
    import asyncio
    import fcntl
    import os

    from jobplane.agent import supervisor
    from jobplane.agent.runtime import HostProcessRuntime, ProcessSpec

    rt = EngineRuntime(FakeClock(), "podman", data_dir=tmp_path, binary="/usr/bin/podman")
    removals: list[str] = []

    async def remove(name: str) -> None:
        removals.append(name)

    async def inner_start(self, spec):
        return None

    monkeypatch.setattr(rt, "remove", remove)
    monkeypatch.setattr(HostProcessRuntime, "start", inner_start)
    state = tmp_path / "run"
    state.mkdir()
    (state / ENGINE_FILE).write_text("{}")  # an earlier attempt got this far
    if earlier in ("pid.json", "exit.json"):
        (state / earlier).write_text("{}")
    held = None
    if earlier == "claim":
        held = os.open(state / supervisor.CLAIM_FILE, os.O_RDONLY | os.O_CREAT, 0o600)
        fcntl.flock(held, fcntl.LOCK_EX)
    image = ImageSpec(image="localhost/bb:1", image_ref="abc123", command=[], args=[], env={},
                      name="k8s_main_p_default_u_0", pod_name="k8s_POD_p_default_u", hostname="p", labels={})
    spec = ProcessSpec(argv=[], executable="", env={}, cwd=None, state_dir=state, log_path=tmp_path / "0.log",
                       done_path=tmp_path / "0.done", image=image)
    try:
        asyncio.run(rt.start(spec))
    finally:
        if held is not None:
            os.close(held)
    assert removals == (["k8s_main_p_default_u_0"] if removed else [])
