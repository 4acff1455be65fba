"""Pod volumes as host directories, and how a container sees them.

Each volume is a directory on the host: an ``emptyDir`` on the data disk under
``DIR/pods/<uid>/volumes/<name>``; the ConfigMap, Secret, downward API and projected volumes
(whose contents ``projection`` writes) and ``medium: Memory`` emptyDirs in the pod's runtime
directory on tmpfs (``RUNTIME/pods/<uid>/volumes/<name>``, ``agent/rundir.py``), as kubelet
puts them on tmpfs; a root agent also mounts a tmpfs of its own on a Memory emptyDir (for
``sizeLimit``); ``hostPath`` is the path itself, after its ``type`` check. In the sandbox each ``volumeMount`` is bind-mounted at its ``mountPath``
(``subPath``/``subPathExpr`` applied, ``readOnly`` as a read-only bind).

Without a sandbox (bwrap missing) the old fallback applies: ``JOBPLANE_VOLUME_<NAME>``
always names the directory, and ``mountPath`` becomes a symlink to it when that path does
not exist yet.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from jobplane.agent.sandbox import Mount
from jobplane.agent.spec import expand, sanitize_env_name
from jobplane.api.resources import quantity
from jobplane.api.serviceaccounts import MOUNT_PATH as SERVICE_ACCOUNT_DIR

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# Volume types whose directory is the pod's own (contents written by the agent, if any), and of
# those the ones whose contents the agent writes, always in the pod's runtime directory (memory).
POD_DIR_TYPES = ("emptyDir", "configMap", "secret", "downwardAPI", "projected")
WRITTEN_TYPES = frozenset(POD_DIR_TYPES[1:])


class MountError(Exception):
    """A volume cannot be set up (kubelet's FailedMount); the pod waits and the agent retries."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume
        self.message = message

    @property
    def event_message(self) -> str:
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self.message}'


def _hostpath_type_check(name: str, path: Path, kind: str) -> None:
    """kubelet's hostPath ``type`` checks (pkg/volume/hostpath): create or verify."""
    if kind == "DirectoryOrCreate":
        if not path.exists():
            path.mkdir(parents=True, mode=0o755)
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        kind = "File"
    checks = {
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "File": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if kind not in checks:
        return
    test, what = checks[kind]
    try:
        mode = path.stat().st_mode
    except OSError:
        raise MountError(name, f"hostPath type check failed: {path} {what}") from None
    if not test(mode):
        raise MountError(name, f"hostPath type check failed: {path} {what}")


def in_memory(vol: Obj) -> bool:
    """Whether a pod volume's directory belongs on tmpfs (kubelet: secret, projected,
    configMap, downwardAPI, and emptyDir with ``medium: Memory``)."""
    empty = vol.get("emptyDir")
    return "emptyDir" not in vol or (isinstance(empty, dict) and empty.get("medium") == "Memory")


def volume_dirs(pod: Obj, pod_dir: Path, *, run_dir: Path | None = None, memory_tmpfs: bool = False,
                pvc_paths: dict[str, Path] | None = None, new: bool = False) -> dict[str, Path]:
    """Create (or check) each volume's host directory, those ``in_memory`` under ``run_dir``
    (default: ``pod_dir``); MountError when one cannot be. ``new``: ``pod_dir`` and ``run_dir``
    were just made (empty): each directory is made with one ``mkdir``, nothing is checked."""
    out: dict[str, Path] = {}
    made: set[Path] = set()
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        name = vol.get("name", "")
        if "hostPath" in vol:
            hp = vol["hostPath"] or {}
            path = Path(hp.get("path", "/"))
            _hostpath_type_check(name, path, hp.get("type") or "")
        elif "persistentVolumeClaim" in vol:
            claim = (vol["persistentVolumeClaim"] or {}).get("claimName", "")
            found = (pvc_paths or {}).get(claim)
            if found is None:
                raise MountError(name, f'persistentvolumeclaim "{claim}" is not bound to a volume with a host path')
            path = found
        else:
            if not any(t in vol for t in POD_DIR_TYPES):
                kinds = [k for k in vol if k != "name"]
                raise MountError(name, f"volume type {kinds[0] if kinds else '(none)'} is not supported by jobplane")
            path = (run_dir if run_dir is not None and in_memory(vol) else pod_dir) / "volumes" / name
            created = new or not path.is_dir()
            if new:  # one mkdir each: the parents are known
                if path.parent not in made:
                    path.parent.mkdir()
                    made.add(path.parent)
                path.mkdir()
            elif created:
                path.mkdir(parents=True, exist_ok=True)
            if created and "emptyDir" in vol:
                os.chmod(path, 0o777)  # as kubelet's emptyDir: any user of the pod may write
            empty = vol.get("emptyDir")
            if isinstance(empty, dict) and empty.get("medium") == "Memory" and memory_tmpfs:
                _mount_tmpfs(path, empty.get("sizeLimit"))
        out[name] = path
    return out


def container_mounts(container: Obj, volumes: dict[str, Path], env: dict[str, str]) -> list[Mount]:
    """The container's bind mounts: ``subPath`` (or ``subPathExpr`` expanded with the
    container's environment) created inside the volume if missing, as kubelet does."""
    mounts: list[Mount] = []
    for m in container.get("volumeMounts") or ():
        base = volumes.get(m.get("name", ""))
        target = m.get("mountPath")
        if base is None or not target:
            continue
        sub = m.get("subPath") or ""
        if not sub and m.get("subPathExpr"):
            sub = expand(str(m["subPathExpr"]), env)
        source = base
        if sub:
            if os.path.isabs(sub) or ".." in Path(sub).parts:
                raise MountError(m.get("name", ""), f"subPath {sub!r} must be a relative path inside the volume")
            source = base / sub
            if not os.path.lexists(source):
                source.mkdir(parents=True, exist_ok=True)
                os.chmod(source, 0o777 if base.stat().st_mode & 0o002 else 0o755)
        mounts.append(Mount(str(source), os.path.normpath(target), bool(m.get("readOnly"))))
    return mounts


def translate(path: str, mounts: list[Mount]) -> str:
    """Where a path inside the sandbox lives on the host (the deepest mount wins)."""
    best: Mount | None = None
    for m in mounts:
        if (path == m.target or path.startswith(m.target.rstrip("/") + "/")) and (
                best is None or len(m.target) > len(best.target)):
            best = m
    if best is None:
        return path
    return best.source + path[len(best.target.rstrip("/")):] if path != best.target else best.source


# ------------------------------------------------------------------ tmpfs (root agents)

_MNT_DETACH = 2


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size_limit: Any) -> None:
    if os.path.ismount(path):
        return
    opts = "mode=0777"
    if size_limit:
        opts += f",size={int(quantity(size_limit))}"
    if _libc().mount(b"tmpfs", os.fsencode(path), b"tmpfs", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(path.name, f"mount tmpfs: {os.strerror(err)}")


def remove_pod_tree(path: Path, mounts: bool = True) -> None:
    """Detach what is mounted below one of a pod's directories (unless the caller knows
    nothing is: no Memory emptyDir), then remove it (blocking)."""
    if mounts:
        unmount_all(path)
    shutil.rmtree(path, ignore_errors=True)


RM = shutil.which("rm", path=os.defpath)


def remove_pod_trees(trees: list[tuple[Path, bool]]) -> None:
    """Remove many pods' directories at once, in order (blocking): ``(path, mounts)`` as for
    ``remove_pod_tree``, with one read of the mount table for all those that may hold mounts,
    and one ``rm -rf --one-file-system`` for all: a tree removed by this process costs a GIL
    hand-over per system call (~60 for a finished pod's runtime directory), and the event loop
    shares that GIL (bench/RESULTS.md §19c); rm removes them without following symbolic links,
    as ``shutil.rmtree`` does. What rm cannot remove is removed here, as before."""
    if not trees:
        return
    mounted = [path for path, mounts in trees if mounts]
    if mounted:
        unmount_all(*mounted)
    paths = [str(path) for path, _mounts in trees]
    if RM is not None:
        try:
            if subprocess.run([RM, "-rf", "--one-file-system", "--", *paths], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0:
                return
        except OSError as exc:
            log.debug("rm: %s", exc)
    for path, _mounts in trees:
        shutil.rmtree(path, ignore_errors=True)


def unmount_all(*pod_dirs: Path) -> None:
    """Detach every mount below the pods' directories (their Memory emptyDirs) before removal."""
    roots = tuple(str(d).rstrip("/") + "/" for d in pod_dirs)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p.startswith(roots)), key=len, reverse=True):
        _libc().umount2(os.fsencode(point), _MNT_DETACH)


# ----------------------------------------------------------- the fallback (no sandbox)

def mount_env(container: Obj, volumes: dict[str, Path]) -> dict[str, str]:
    """``JOBPLANE_VOLUME_<NAME>`` for each mount of the container (subPath included)."""
    env: dict[str, str] = {}
    for m in container.get("volumeMounts") or ():
        base = volumes.get(m.get("name", ""))
        if base is None:
            continue
        path = base / m["subPath"] if m.get("subPath") else base
        env["JOBPLANE_VOLUME_" + sanitize_env_name(m.get("name", ""))] = str(path)
    return env


def link_mounts(container: Obj, volumes: dict[str, Path]) -> list[str]:
    """Create ``mountPath`` symlinks where possible; returns the links created (to remove later)."""
    created: list[str] = []
    for m in container.get("volumeMounts") or ():
        base = volumes.get(m.get("name", ""))
        mount_path = m.get("mountPath")
        if base is None or not mount_path or mount_path == SERVICE_ACCOUNT_DIR:
            continue  # one host path cannot hold every pod's own credentials
        target = base / m["subPath"] if m.get("subPath") else base
        if m.get("subPath"):
            target.mkdir(parents=True, exist_ok=True)
        link = Path(mount_path)
        if os.path.lexists(link):
            if not (link.is_symlink() and os.readlink(link) == str(target)):
                log.info("mountPath %s exists; the volume is only reachable via the environment", link)
            continue
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
            created.append(str(link))
        except OSError as exc:
            log.info("cannot create mountPath %s (%s); the volume is reachable via the environment", link, exc)
    return created


def unlink_mounts(links: list[str]) -> None:
    for link in links:
        with contextlib.suppress(OSError):
            if os.path.islink(link):
                os.unlink(link)
