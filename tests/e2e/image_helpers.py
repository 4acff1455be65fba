"""Images for the image runtime's e2e tests, made here from the host's own files: no registry
and no Dockerfile builder is needed (none is reachable from CI).

A ``RootFS`` collects host paths (each kept at its path, with the symlinks and directories
leading to it as on the host, so ``/lib -> usr/lib`` stays a link) plus files of its own, and
adds the shared libraries ``ldd`` says its ELF files load; ``write`` makes the tar that
``podman import`` turns into an image. The image's file system therefore differs from the
host's: only what was asked for is in it.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

PODMAN = shutil.which("podman")
BUSYBOX = "/bin/busybox"
# podman's own default ulimits exceed this machine's hard limits (see agent/engine.py)
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def podman(*args: str, env: Mapping[str, str] | None = None, check: bool = True,
           timeout: float = 120, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    assert PODMAN is not None
    argv = [*(prefix or []), PODMAN, *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                         env=dict(env) if env is not None else None)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def why_no_podman() -> str:
    """Why the podman tests cannot run here ("" when they can, as far as installed tools go)."""
    if PODMAN is None:
        return "podman is not installed (apt-get install podman runc)"
    if not os.path.exists(BUSYBOX):
        return "busybox-static is not installed (apt-get install busybox-static): the test images need it"
    return ""


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def shared_libraries(paths: Iterable[str]) -> set[str]:
    """The libraries (and the dynamic loader) the ELF files load, as ``ldd`` resolves them here
    (one ``ldd`` for all of them; static executables add nothing)."""
    files = sorted(p for p in set(paths) if _is_elf(p))
    if not files:
        return set()
    out = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=120).stdout
    found: set[str] = set()
    for line in out.splitlines():
        line = line.strip()
        if line.endswith(":"):  # "/usr/bin/x:" heads each file's list when there are several
            continue
        target = line.split("=>", 1)[1] if "=>" in line else line
        word = target.strip().split(" ", 1)[0]
        if word.startswith("/"):
            found.add(word)
    return found


class RootFS:
    """A root file system being assembled (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[str, tarfile.TarInfo] = {}
        self._sources: dict[str, str] = {}  # arcname -> host file whose bytes it holds
        self._data: dict[str, bytes] = {}
        self._elf: set[str] = set()

    # ---------------------------------------------------------------- host paths

    def add_host(self, *paths: str, exclude: Iterable[str] = ()) -> RootFS:
        """Each path as on the host: a file, or a directory with everything under it except
        entries whose name is in ``exclude``."""
        skip = frozenset(exclude)
        for path in paths:
            self._host(os.path.abspath(path), whole=True, skip=skip)
        return self

    def _host(self, path: str, whole: bool, skip: frozenset[str]) -> None:
        parts = Path(path).parts[1:]
        current = "/"
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            rest = parts[i + 1:]
            if os.path.islink(current):
                target = self._link(current)
                self._host(os.path.join(target, *rest) if rest else target, whole, skip)
                return
            if rest:
                self._dir_entry(current)
        if os.path.isdir(path):
            self._dir_entry(path)
            if whole:
                self._tree(path, skip)
        elif os.path.exists(path):
            self._file(path)

    def _link(self, path: str) -> str:
        """Add the symlink itself; the host path it points to."""
        name = path.lstrip("/")
        target = os.readlink(path)
        if name not in self._entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            self._entries[name] = info
        return os.path.normpath(os.path.join(os.path.dirname(path), target))

    def _dir_entry(self, path: str) -> None:
        name = path.strip("/")
        if name and name not in self._entries:
            self._dir(name, os.stat(path).st_mode & 0o7777)

    def _file(self, path: str) -> None:
        name = path.lstrip("/")
        if name in self._entries:
            return
        st = os.stat(path)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = st.st_size, st.st_mode & 0o7777, int(st.st_mtime)
        self._entries[name] = info
        self._sources[name] = path
        if _is_elf(path):
            self._elf.add(path)

    def _tree(self, top: str, skip: frozenset[str]) -> None:
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for d in list(dirs):
                full = os.path.join(root, d)
                if os.path.islink(full):  # os.walk does not descend into links
                    dirs.remove(d)
                    self._host(full, whole=True, skip=skip)
                else:
                    self._dir_entry(full)
            for f in sorted(files):
                if f not in skip:
                    self._host(os.path.join(root, f), whole=True, skip=skip)

    # ---------------------------------------------------------------- own entries

    def _dir(self, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name.strip("/"))
        info.type, info.mode = tarfile.DIRTYPE, mode
        self._entries[info.name] = info

    def add_dir(self, name: str, mode: int = 0o755) -> RootFS:
        self._parents(name)
        self._dir(name, mode)
        return self

    def add_text(self, name: str, text: str, mode: int = 0o644) -> RootFS:
        name = name.lstrip("/")
        self._parents(name)
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        self._entries[name] = info
        self._data[name] = data
        return self

    def add_symlink(self, name: str, target: str) -> RootFS:
        name = name.lstrip("/")
        self._parents(name)
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self._entries[name] = info
        return self

    def _parents(self, name: str) -> None:
        parent = os.path.dirname(name.strip("/"))
        while parent and parent not in self._entries:
            self._dir(parent)
            parent = os.path.dirname(parent)

    # ---------------------------------------------------------------- output

    def write(self, tar_path: Path) -> Path:
        """The tar, with every library the ELF files need (parents before their contents)."""
        self.add_host(*sorted(shared_libraries(self._elf)))
        with tarfile.open(tar_path, "w") as tar:
            for name in sorted(self._entries):
                info = self._entries[name]
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if name in self._data:
                    tar.addfile(info, io.BytesIO(self._data[name]))
                elif name in self._sources:
                    with open(self._sources[name], "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        return tar_path


def busybox_rootfs(tools: Iterable[str]) -> RootFS:
    """Debian's static busybox as /bin/busybox with the given applets linked to it."""
    fs = RootFS().add_host(BUSYBOX)
    where = os.path.dirname(os.path.realpath(BUSYBOX))  # /usr/bin on a merged-/usr host
    for tool in tools:
        fs.add_symlink(f"{where}/{tool}", os.path.basename(os.path.realpath(BUSYBOX)))
    return fs


def debian_python_packages(*packages: str) -> list[str]:
    """The top-level entries under Python 3's dist-packages that the installed Debian packages,
    and the installed ``python3-*`` packages they depend on, provide."""
    seen: set[str] = set()
    todo = list(packages)
    found: set[str] = set()
    root = "/usr/lib/python3/dist-packages/"
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        listed = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        if listed.returncode != 0:
            continue  # an alternative that is not installed
        for line in listed.stdout.splitlines():
            if line.startswith(root) and len(line) > len(root):
                found.add(root + line[len(root):].split("/", 1)[0])
        depends = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}", pkg], capture_output=True,
                                 text=True).stdout
        for alternative in depends.split(","):
            for choice in alternative.split("|"):
                name = choice.strip().split(" ", 1)[0].split(":", 1)[0]
                if name.startswith("python3-"):
                    todo.append(name)
    return sorted(found)


def import_image(tar: Path, name: str, changes: Iterable[str] = (), env: Mapping[str, str] | None = None) -> str:
    """``podman import`` the tar as ``name`` with Dockerfile-style ``changes``."""
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    podman(*args, str(tar), name, env=env)
    return name


def end_lost_containers(graph: Path, run: Path) -> list[str]:
    """End what podman lost track of in the store at ``graph`` (run root ``run``) after its
    ``rm --force``: a client killed between ``runc create`` and ``runc start`` leaves conmon and
    ``runc init`` behind, and a container killed under a running ``rm`` can leave runc's record.
    runc deletes them (its root is shared with every other store: only bundles under ``graph``
    are touched), the conmon processes naming ``run`` are killed, their cgroups removed. The ids."""
    runc = shutil.which("runc")
    ids: list[str] = []
    if runc:
        listed = subprocess.run([runc, "list", "--format", "json"], capture_output=True, text=True)
        records = (json.loads(listed.stdout or "null") or []) if listed.returncode == 0 else []
        ids = [c["id"] for c in records if str(c.get("bundle", "")).startswith(f"{graph}/")]
        for cid in ids:
            subprocess.run([runc, "delete", "--force", cid], capture_output=True)
    marker = str(run).encode()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if cmdline and os.path.basename(cmdline[0]) == b"conmon" and any(marker in arg for arg in cmdline):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for cid in ids:  # a cgroup is busy until its last process has gone
        paths = glob.glob(f"/sys/fs/cgroup/*/libpod-{cid}*") + glob.glob(f"/sys/fs/cgroup/*/*/libpod-{cid}*")
        for path in sorted(paths, key=len, reverse=True):
            while os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
    return ids
