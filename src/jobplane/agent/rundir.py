"""Where a node agent keeps its pods' runtime files: a private directory on tmpfs.

kubelet mounts secret, projected (the service-account token), configMap and downward API volumes
on tmpfs, and container runtimes keep their per-container state under ``/run``; only container
logs, emptyDirs and the pod's records stay on the node's disk. jobplane does the same: each pod's
volume contents, its ``/etc/hosts`` and ``/etc/hostname`` and the node supervisor's run state
(``pid.json``, ``exit.json``) live under ``RUNTIME/pods/<uid>``, where a create or mkdir costs a
tenth of what it does on an ext4 data disk (bench/RESULTS.md §17a) and nothing reaches the disk.
A reboot empties it, as it empties ``/run``: the worker then finds containers it cannot locate
(``ContainerStatusUnknown``), as kubelet does.

The directory is ``$XDG_RUNTIME_DIR``, ``/run`` (root) or ``/dev/shm``, whichever is first on
tmpfs, plus a name unique to the data directory (and the user, in the shared ``/dev/shm``). It is
created 0700 and checked without following symbolic links: in a world-writable directory someone
else may have made that name first, and then the agent keeps its files in the data directory, as
it does when no tmpfs is found. ``--runtime-dir`` (``JOBPLANE_RUNTIME_DIR``) names one explicitly;
``off`` keeps everything in the data directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

MEMORY_FS = frozenset({"tmpfs", "ramfs"})
OFF = "off"


class UnsafeRuntimeDir(Exception):
    """The runtime directory exists but is not a private directory of ours."""


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def fs_type(path: str, mountinfo: str) -> str | None:
    """The file-system type of the mount holding ``path`` (absolute, symlinks resolved), from
    the text of ``/proc/self/mountinfo``; the deepest (then the last) mount point wins."""
    best, found = -1, None
    for line in mountinfo.splitlines():
        parts = line.split()
        if " - " not in line or len(parts) < 5:
            continue
        point = _unescape(parts[4])
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if len(point) >= best:
                best, found = len(point), line.split(" - ", 1)[1].split()[0]
    return found


def candidates(data_dir: Path, euid: int, env: Mapping[str, str]) -> list[Path]:
    """Where the runtime directory may go, best first (pure): the name carries a digest of the
    data directory, so two servers on one machine never share one."""
    digest = hashlib.sha256(os.fsencode(str(data_dir))).hexdigest()[:16]
    out: list[Path] = []
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        out.append(Path(xdg) / f"jobplane-{digest}")
    if euid == 0:
        out.append(Path("/run") / f"jobplane-{digest}")
    out.append(Path("/dev/shm") / f"jobplane-{euid}-{digest}")
    return out


def make_private(path: Path) -> Path:
    """Create ``path`` (0700) or accept it only when it is a real directory (not a symbolic
    link), ours, and closed to others; UnsafeRuntimeDir otherwise. The parent must exist."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise UnsafeRuntimeDir(f"{path} belongs to uid {st.st_uid}, not to this agent's {os.geteuid()}")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o022:
            raise UnsafeRuntimeDir(f"{path} is writable by others (mode {mode:o})")
        if mode & 0o077:
            os.fchmod(fd, 0o700)  # ours, and only others' reading to take away
        lst = os.lstat(path)
        if (lst.st_dev, lst.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafeRuntimeDir(f"{path} changed while it was checked")
    finally:
        os.close(fd)
    return path


def _mountinfo() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def choose(data_dir: Path, setting: str = "") -> Path | None:
    """The runtime directory for ``data_dir`` (created and checked), or None: keep the pods'
    runtime files in the data directory (``off``, no tmpfs here, or no safe place on one)."""
    if setting == OFF:
        return None
    if setting:
        path = Path(setting).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        return make_private(path)  # the operator's choice: an unsafe one is an error, not a fallback
    info = _mountinfo()
    for path in candidates(Path(data_dir).resolve(), os.geteuid(), os.environ):
        parent = os.path.realpath(path.parent)
        if not os.path.isdir(parent) or fs_type(parent, info) not in MEMORY_FS:
            continue
        try:
            return make_private(Path(parent) / path.name)
        except (OSError, UnsafeRuntimeDir) as exc:
            log.warning("runtime directory %s cannot be used (%s)", path, exc)
    log.info("no tmpfs for the pods' runtime files: they stay in %s", data_dir)
    return None
