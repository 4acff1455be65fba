"""Spare pod directories (agent/spares.py): what a spare holds, which leftovers are reused, when
the pool refills, and a full disk."""

import errno
import logging
import os
import shutil

import pytest

from jobplane.agent import spares
from jobplane.agent.spares import (
    SparePool,
    claim_first_log,
    current_umask,
    is_spare,
    layout,
    make_spare,
    own_index,
    read_layout,
    reusable,
)
from jobplane.podlogs import log_path


def test_names():
    assert is_spare(".spare-n1-0") and not is_spare("0b8f-uid") and not is_spare("spare-n1-0")
    assert own_index(".spare-n1-7", "n1") == 7
    assert own_index(".spare-n1-2-7", "n1") is None  # node n1-2's
    assert own_index(".spare-n1-x", "n1") is None and own_index("n1-7", "n1") is None


@pytest.mark.parametrize("with_tmp", [True, False])
def test_a_spare_is_laid_out_as_a_new_pods_directory(tmp_path, with_tmp):
    spares.make_spare(tmp_path / "s", with_tmp)
    umask = current_umask()
    assert umask is not None
    found = read_layout(tmp_path / "s")
    assert found == layout(with_tmp, umask)
    assert (found["tmp"][1] == 0o1777) if with_tmp else "tmp" not in found
    assert reusable(found, with_tmp, umask) and not reusable(found, not with_tmp, umask)
    assert not reusable(found, with_tmp, None)  # umask unknown: never reused


@pytest.mark.parametrize("change", ["state written", "extra file", "logs not empty", "log written", "mode", "link"])
def test_a_spare_changed_in_any_way_is_not_reused(tmp_path, change):
    path = tmp_path / "s"
    spares.make_spare(path, True)
    if change == "state written":
        (path / "state.json").write_text("{}")
    elif change == "extra file":
        (path / "x").write_text("")
    elif change == "logs not empty":
        (path / "logs" / "c").mkdir()
    elif change == "log written":
        (path / "logs" / ".first" / "0.log").write_text("x")
    elif change == "mode":
        os.chmod(path / "tmp", 0o755)
    else:
        shutil.rmtree(path / "logs")
        (path / "logs").symlink_to(tmp_path)
    assert not reusable(read_layout(path), True, current_umask())
    assert read_layout(tmp_path / "missing") is None


def test_refill_take_and_mismatch(tmp_path):
    pool = SparePool(tmp_path, "n1", with_tmp=True, size=2)
    pool.refill()
    assert pool.ready == 2 and sorted(os.listdir(tmp_path)) == [".spare-n1-0", ".spare-n1-1"]
    assert not pool.take(tmp_path / "uid-a", with_tmp=False)  # a pod without the sandbox: no tmp/ wanted
    assert pool.take(tmp_path / "uid-a", with_tmp=True)
    assert sorted(os.listdir(tmp_path / "uid-a")) == ["logs", "state.json", "tmp"]
    (tmp_path / "uid-b").mkdir()
    (tmp_path / "uid-b" / "state.json").write_text("{}")
    assert not pool.take(tmp_path / "uid-b", with_tmp=True)  # there after all: never replaced
    assert (tmp_path / "uid-b" / "state.json").read_text() == "{}" and pool.ready == 1
    assert pool.take(tmp_path / "uid-c", with_tmp=True)
    assert not pool.take(tmp_path / "uid-d", with_tmp=True)  # none left
    assert pool.taken == 2
    pool.refill()
    assert pool.ready == 2 and ".spare-n1-2" in os.listdir(tmp_path)


def test_no_refill_while_a_pod_starts(tmp_path):
    quiet = [False]
    pool = SparePool(tmp_path, "n1", with_tmp=False, size=3, quiet=lambda: quiet[0])
    pool.refill()
    assert pool.ready == 0
    pool.refill(busy=True)  # not quiet for a while: one
    assert pool.ready == 1
    quiet[0] = True
    pool.refill()
    assert pool.ready == 3


def test_a_full_disk_leaves_no_spare_and_is_logged_once(tmp_path, monkeypatch, caplog):
    now = [100.0]
    pool = SparePool(tmp_path, "n1", with_tmp=True, size=2, clock=lambda: now[0])
    calls = []
    real_open = os.open

    def full(path, *args, **kwargs):
        if not str(path).endswith("state.json"):
            return real_open(path, *args, **kwargs)
        calls.append(path)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spares.os, "open", full)
    with caplog.at_level(logging.INFO, logger="jobplane.agent.spares"):
        for _ in range(3):
            pool.refill()
            now[0] += 1.0
        assert pool.ready == 0 and os.listdir(tmp_path) == []  # nothing half made is left
        assert len(calls) == 1  # within the back-off: not tried again
        now[0] += spares.FAILURE_BACKOFF
        pool.refill()
        assert len(calls) == 2 and pool.ready == 0
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
        monkeypatch.setattr(spares.os, "open", real_open)
        now[0] += spares.FAILURE_BACKOFF
        pool.refill()
        assert pool.ready == 2
        assert "made again" in caplog.records[-1].getMessage()


def test_leftovers_are_reused_or_removed(tmp_path):
    spares.make_spare(tmp_path / ".spare-n1-4", True)  # good
    spares.make_spare(tmp_path / ".spare-n1-9", True)
    (tmp_path / ".spare-n1-9" / "state.json").write_text("x")  # used: goes
    spares.make_spare(tmp_path / ".spare-n1-2", False)  # made without tmp/: goes
    (tmp_path / ".spare-n1-3").mkdir()  # half made: goes
    spares.make_spare(tmp_path / ".spare-n2-1", True)  # another node's agent: stays
    (tmp_path / "uid-a").mkdir()  # a pod's: stays
    pool = SparePool(tmp_path, "n1", with_tmp=True, size=3)
    pool.adopt()
    assert pool.ready == 1
    assert sorted(os.listdir(tmp_path)) == [".spare-n1-4", ".spare-n2-1", "uid-a"]
    pool.refill()
    assert sorted(os.listdir(tmp_path)) == [".spare-n1-10", ".spare-n1-11", ".spare-n1-4", ".spare-n2-1", "uid-a"]


def test_the_thread_refills_a_busy_node_slowly(tmp_path, monkeypatch):
    monkeypatch.setattr(spares, "BUSY_REFILL", 0.05)
    pool = SparePool(tmp_path, "n1", with_tmp=False, size=2, quiet=lambda: False)
    pool.start()
    try:
        _until(lambda: pool.ready == 1)
        _until(lambda: pool.ready == 2)
        assert pool.take(tmp_path / "uid-a", with_tmp=False)  # wakes nothing: pods are starting
        _until(lambda: pool.ready == 2)
    finally:
        pool.stop()


def test_the_thread_fills_and_refills_on_wake(tmp_path, monkeypatch):
    monkeypatch.setattr(spares, "BUSY_REFILL", 60.0)
    quiet = [True]
    pool = SparePool(tmp_path, "n1", with_tmp=False, size=2, quiet=lambda: quiet[0])
    pool.start()
    try:
        _until(lambda: pool.ready == 2)
        quiet[0] = False
        assert pool.take(tmp_path / "uid-a", with_tmp=False)  # a pod is starting: not woken
        assert not pool._wake.is_set() and pool.ready == 1
        quiet[0] = True
        pool.wake()  # (RunningReports.on_quiet)
        _until(lambda: pool.ready == 2)
        assert pool.take(tmp_path / "uid-b", with_tmp=False)  # on a quiet node: refilled at once
        _until(lambda: pool.ready == 2)
    finally:
        pool.stop()
    assert pool._thread is not None and not pool._thread.is_alive()


def _until(fn, timeout=5.0):
    import time

    end = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < end
        time.sleep(0.005)


def test_claim_first_log_renames_the_spares_log_once_and_only_for_a_first_start(tmp_path):
    pod = tmp_path / "uid-p"
    make_spare(pod, with_tmp=False)
    assert not claim_first_log(pod, log_path(tmp_path, "uid-p", "c", 1))  # a restart's log: not the spare's
    assert claim_first_log(pod, log_path(tmp_path, "uid-p", "c", 0))
    assert (pod / "logs" / "c" / "0.log").read_bytes() == b""
    assert not (pod / "logs" / ".first").exists()
    assert not claim_first_log(pod, log_path(tmp_path, "uid-p", "d", 0))  # used up: the supervisor makes d's


def test_claim_first_log_leaves_an_existing_log_directory_alone(tmp_path):
    pod = tmp_path / "uid-p"
    make_spare(pod, with_tmp=False)
    (pod / "logs" / "c").mkdir()
    (pod / "logs" / "c" / "0.log").write_bytes(b"earlier\n")
    assert not claim_first_log(pod, log_path(tmp_path, "uid-p", "c", 0))
    assert (pod / "logs" / "c" / "0.log").read_bytes() == b"earlier\n"
