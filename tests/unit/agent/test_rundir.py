"""The pods' runtime directory: where it goes and the checks that keep it private."""

import os
from pathlib import Path

import pytest

from jobplane.agent import rundir

MOUNTINFO = """\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
26 25 0:23 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
27 22 0:24 / /run rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,mode=755
28 27 0:25 / /run/user/1000 rw,nosuid - tmpfs tmpfs rw,mode=700,uid=1000
29 22 0:26 / /my\\040data rw - xfs /dev/vdb rw
"""


def test_fs_type_takes_the_deepest_mount_holding_the_path():
    assert rundir.fs_type("/dev/shm/jobplane-0-x", MOUNTINFO) == "tmpfs"
    assert rundir.fs_type("/dev/shmx", MOUNTINFO) == "devtmpfs"
    assert rundir.fs_type("/run/user/1000/a", MOUNTINFO) == "tmpfs"
    assert rundir.fs_type("/var/lib/jobplane", MOUNTINFO) == "ext4"
    assert rundir.fs_type("/my data/x", MOUNTINFO) == "xfs"  # mountinfo's \040 is a space
    assert rundir.fs_type("/x", "") is None


def test_candidates_are_unique_per_data_dir_and_user():
    a = rundir.candidates(Path("/srv/a"), 1000, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    b = rundir.candidates(Path("/srv/b"), 1000, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert [p.parent for p in a] == [Path("/run/user/1000"), Path("/dev/shm")]  # /run only for root
    assert a[1].name.startswith("jobplane-1000-") and a[0].name != b[0].name and a[1].name != b[1].name
    root = rundir.candidates(Path("/srv/a"), 0, {"XDG_RUNTIME_DIR": "relative"})
    assert [p.parent for p in root] == [Path("/run"), Path("/dev/shm")]


def test_make_private_creates_0700_and_tightens_our_own(tmp_path):
    path = rundir.make_private(tmp_path / "rt")
    assert os.stat(path).st_mode & 0o777 == 0o700
    os.chmod(path, 0o750)
    rundir.make_private(path)
    assert os.stat(path).st_mode & 0o777 == 0o700


def test_make_private_refuses_a_symlink_a_file_others_writable_and_foreign_dirs(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):
        rundir.make_private(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        rundir.make_private(tmp_path / "file")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(rundir.UnsafeRuntimeDir, match="writable by others"):
        rundir.make_private(shared)
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 12345, 12345)
        with pytest.raises(rundir.UnsafeRuntimeDir, match="belongs to uid 12345"):
            rundir.make_private(foreign)


def test_choose_off_explicit_and_no_tmpfs(tmp_path, monkeypatch):
    assert rundir.choose(tmp_path / "data", "off") is None
    explicit = rundir.choose(tmp_path / "data", str(tmp_path / "a" / "rt"))
    assert explicit == tmp_path / "a" / "rt" and explicit.is_dir()
    (tmp_path / "bad").symlink_to(tmp_path)
    with pytest.raises(OSError):  # the operator's choice: refused, not replaced
        rundir.choose(tmp_path / "data", str(tmp_path / "bad"))
    monkeypatch.setattr(rundir, "_mountinfo", lambda: "22 1 252:0 / / rw - ext4 /dev/vda rw\n")
    assert rundir.choose(tmp_path / "data") is None


def test_choose_skips_a_squatted_name_for_the_next_tmpfs(tmp_path, monkeypatch):
    first, second = tmp_path / "xdg", tmp_path / "shm"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr(rundir, "candidates", lambda *_: [first / "jobplane-x", second / "jobplane-x"])
    monkeypatch.setattr(rundir, "_mountinfo", lambda: f"22 1 0:1 / {tmp_path} rw - tmpfs tmpfs rw\n")
    (first / "jobplane-x").symlink_to(second)  # someone's trap in a shared directory
    assert rundir.choose(tmp_path / "data") == second / "jobplane-x"
    assert not (second / "jobplane-x").is_symlink() and os.stat(second / "jobplane-x").st_mode & 0o777 == 0o700
