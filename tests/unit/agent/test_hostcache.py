"""The agent's short-lived answers about the host (agent/hostcache.py) and their users."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from jobplane.agent import hostcache, sandbox, spec
from jobplane.agent.hostcache import Recent, fresh
from jobplane.agent.sandbox import Mount
from jobplane.agent.spec import ContainerConfigError, resolve_executable


@pytest.mark.parametrize(("stamp", "now", "ttl", "want"), [
    (10.0, 10.0, 1.0, True),  # just found
    (10.0, 10.999, 1.0, True),
    (10.0, 11.0, 1.0, False),  # TTL reached: asked again
    (10.0, 50.0, 1.0, False),
    (10.0, 9.5, 1.0, False),  # the clock went back: asked again
    (10.0, 10.0, 0.0, False),  # no TTL: never reused
])
def test_fresh(stamp, now, ttl, want):
    assert fresh(stamp, now, ttl) is want


def test_recent_reuses_an_answer_until_its_ttl_and_keeps_no_error():
    now = [100.0]
    calls = []
    cache: Recent[str] = Recent(ttl=1.0, size=2, now=lambda: now[0])

    def compute(v):
        calls.append(v)
        return v

    assert cache.get("a", lambda: compute("1")) == "1"
    now[0] = 100.5
    assert cache.get("a", lambda: compute("2")) == "1" and calls == ["1"]
    now[0] = 101.0
    assert cache.get("a", lambda: compute("3")) == "3"
    cache.forget("a")
    assert cache.get("a", lambda: compute("4")) == "4"

    def boom():
        raise ValueError("x")

    with pytest.raises(ValueError):
        cache.get("b", boom)
    assert cache.get("b", lambda: compute("5")) == "5"  # the failure was not kept
    cache.get("c", lambda: "c")  # full (size 2): emptied first
    assert cache.get("a", lambda: compute("6")) == "6"


@pytest.fixture
def prog_dirs(tmp_path):
    spec._programs.clear()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    yield first, second
    spec._programs.clear()


def _prog(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("sandboxed", [False, True])
def test_a_found_program_is_reused_checked_and_found_again_after_the_ttl(prog_dirs, sandboxed, monkeypatch):
    first, second = prog_dirs
    env = {"PATH": f"{first}:{second}"}
    view = [Mount("/somewhere/data", "/data")]  # covers no PATH directory
    host = (lambda p: sandbox_translate(p, view)) if sandboxed else None
    key = tuple(m.target for m in view) if sandboxed else None
    now = [0.0]
    monkeypatch.setattr(spec, "_programs", Recent(now=lambda: now[0]))
    found = _prog(second / "prog")
    assert resolve_executable("prog", env, None, host_path=host, view_key=key) == found
    newer = _prog(first / "prog")  # installed earlier on PATH: seen once the TTL is over
    assert resolve_executable("prog", env, None, host_path=host, view_key=key) == found
    now[0] += hostcache.TTL
    assert resolve_executable("prog", env, None, host_path=host, view_key=key) == newer
    os.unlink(newer)  # removed: the next start looks again at once
    assert resolve_executable("prog", env, None, host_path=host, view_key=key) == found
    os.unlink(found)
    with pytest.raises(ContainerConfigError, match="executable file not found"):
        resolve_executable("prog", env, None, host_path=host, view_key=key)


def sandbox_translate(path, view):
    from jobplane.agent.volumes import translate
    return translate(path, view)


def test_a_volume_over_a_path_directory_is_searched_every_time(prog_dirs):
    first, second = prog_dirs
    vol = first.parent / "vol"
    vol.mkdir()
    _prog(vol / "prog")
    _prog(second / "prog")
    env = {"PATH": f"/opt/tools:{second}"}
    view = [Mount(str(vol), "/opt/tools")]
    assert resolve_executable("prog", env, None, host_path=lambda p: sandbox_translate(p, view),
                              view_key=("/opt/tools",)) == "/opt/tools/prog"
    os.unlink(vol / "prog")  # not kept: the volume's contents are the pod's own
    assert resolve_executable("prog", env, None, host_path=lambda p: sandbox_translate(p, view),
                              view_key=("/opt/tools",)) == str(second / "prog")


@pytest.fixture
def outside_tmp():
    """Not under /tmp (the sandbox's own /tmp: mount points there are taken as written)."""
    path = Path(tempfile.mkdtemp(prefix="jobplane-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_mount_points_and_hidden_paths_are_looked_at_once_per_ttl(outside_tmp, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(sandbox, "_real", Recent(now=lambda: now[0]))
    monkeypatch.setattr(sandbox, "_hidden", Recent(now=lambda: now[0]))
    real, other = outside_tmp / "real", outside_tmp / "other"
    real.mkdir()
    other.mkdir()
    link = outside_tmp / "link"
    link.symlink_to(real)
    assert sandbox.mount_point(str(link / "sub")) == str(real.resolve() / "sub")
    link.unlink()
    link.symlink_to(other)
    assert sandbox.mount_point(str(link / "sub")) == str(real.resolve() / "sub")  # the answer of a moment ago
    now[0] += hostcache.TTL
    assert sandbox.mount_point(str(link / "sub")) == str(other.resolve() / "sub")

    hidden = outside_tmp / "hidden"
    spec_ = sandbox.SandboxSpec(hostname="h", hosts_file="/h", hostname_file="/n", tmp_dir="/t",
                                hidden=(str(hidden),))
    support = sandbox.SandboxSupport("/b")
    assert str(hidden) not in sandbox.bwrap_argv(support, spec_, ["x"], None)  # not there: nothing to hide
    hidden.mkdir()
    assert str(hidden) not in sandbox.bwrap_argv(support, spec_, ["x"], None)
    now[0] += hostcache.TTL
    argv = sandbox.bwrap_argv(support, spec_, ["x"], None)
    assert argv[argv.index(str(hidden)) - 1] == "--tmpfs"
