"""Spare pod directories, made ahead of time, off the pod start path.

A new pod gets ``DIR/pods/<uid>/`` with ``state.json`` (empty, 0600), ``logs/`` and, when the
pod is sandboxed, ``tmp/`` (1777); its first container then gets ``logs/<name>/0.log`` from the
node supervisor. A spare holds all of that, the log under a name no container can have
(``logs/.first/0.log``), renamed to the first container's own just before it starts
(``claim_first_log``). On an ext4 data disk each of those inode creations costs
0.2-0.3 ms (bench/RESULTS.md §19b), against a few microseconds on tmpfs, and they lay on the
path from the pod's creation to its container's start. So the agent keeps a few such
directories ready under names no pod can have (``.spare-<node>-<n>``: a uid never starts with a
dot) in the same ``pods/`` directory; a pod no agent ran before takes one with a single
``rename`` (atomic, no inode made) and otherwise everything goes as without them.

A thread refills the pool while no pod of the node is starting (``quiet``), so refills do not
compete with the starts they are for (on a node that is never quiet, one spare a second); after
a failure (a full disk) it waits for a back-off, logging once. An agent that starts finds the spares an earlier one left
and reuses those laid out exactly as it would make them, removing the rest (another node's
agent sharing the data directory keeps its own). Everything that lists ``pods/`` skips these
names (``is_spare``).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from jobplane.agent.supervisor import LOG_MODE

log = logging.getLogger(__name__)

PREFIX = ".spare-"
SIZE = 3
STATE_FILE, LOGS_DIR, TMP_DIR = "state.json", "logs", "tmp"
FIRST_LOG_DIR = f"{LOGS_DIR}/.first"  # a container name never starts with a dot
FIRST_LOG = f"{FIRST_LOG_DIR}/0.log"
FAILURE_BACKOFF = 5.0  # seconds before a refill that failed (ENOSPC, EMFILE) is tried again
BUSY_REFILL = 1.0  # a pool short of spares gets one at least this often, quiet node or not

# (kind, mode, size): what each entry of a spare is; "" is the directory itself
Layout = Mapping[str, tuple[str, int, int]]


def is_spare(name: str) -> bool:
    """A name in ``pods/`` that is a spare directory (of any node's agent), not a pod's."""
    return name.startswith(PREFIX)


def own_index(name: str, node: str) -> int | None:
    """The number of this node's spare ``name``; None for any other name."""
    head = f"{PREFIX}{node}-"
    rest = name[len(head):]
    return int(rest) if name.startswith(head) and rest.isdigit() else None


def layout(with_tmp: bool, umask: int) -> dict[str, tuple[str, int, int]]:
    """What a spare holds, made by this process (as a new pod's worker and the supervisor
    make them: ``mkdir``, ``open(O_CREAT, 0o600)``, ``tmp`` chmod 1777)."""
    out = {"": ("dir", 0o777 & ~umask, 0), STATE_FILE: ("file", 0o600 & ~umask, 0),
           LOGS_DIR: ("dir", 0o777 & ~umask, 0), FIRST_LOG_DIR: ("dir", 0o777 & ~umask, 0),
           FIRST_LOG: ("file", LOG_MODE & ~umask, 0)}
    if with_tmp:
        out[TMP_DIR] = ("dir", 0o1777, 0)
    return out


def reusable(found: Layout | None, with_tmp: bool, umask: int | None) -> bool:
    """Whether a spare an earlier agent left (``found``: ``read_layout``) is one this agent
    would make: the same entries, kinds and modes, the file empty, nothing else."""
    return found is not None and umask is not None and found == layout(with_tmp, umask)


def read_layout(path: Path, limit: int = 8) -> dict[str, tuple[str, int, int]] | None:
    """The entries below ``path`` (never following a link): kind, mode bits, size for files;
    None when it cannot be read, holds more than ``limit`` entries or is not the agent's own."""
    out: dict[str, tuple[str, int, int]] = {}
    euid = os.geteuid()
    try:
        todo = [("", os.lstat(path))]
        while todo:
            rel, st = todo.pop()
            if st.st_uid != euid or len(out) >= limit:
                return None
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), 0)
                with os.scandir(path / rel if rel else path) as it:
                    for entry in it:
                        todo.append((f"{rel}/{entry.name}" if rel else entry.name, entry.stat(follow_symlinks=False)))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size)
            else:
                out[rel] = ("other", stat.S_IMODE(st.st_mode), 0)
    except OSError:
        return None
    return out


def current_umask() -> int | None:
    """This process's umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


def make_spare(path: Path, with_tmp: bool) -> None:
    """Make one spare at ``path`` (blocking; nothing is left of it when it fails)."""
    os.mkdir(path)
    try:
        os.close(os.open(path / STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.mkdir(path / LOGS_DIR)
        os.mkdir(path / FIRST_LOG_DIR)
        os.close(os.open(path / FIRST_LOG, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOG_MODE))
        if with_tmp:
            os.mkdir(path / TMP_DIR)
            os.chmod(path / TMP_DIR, 0o1777)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def claim_first_log(pod_dir: Path, log: Path) -> bool:
    """Give a pod made from a spare its first container's log directory and empty ``0.log``
    (``log``: that log's path) by one rename, as the supervisor would make them (it opens the
    file it finds); False when there is none to give (the supervisor makes them then)."""
    if log.name != "0.log":
        return False
    try:
        os.rename(pod_dir / FIRST_LOG_DIR, log.parent)
    except OSError:  # no spare's log here, or the container's directory exists already
        return False
    return True


class SparePool:
    """A few spare pod directories of one agent (thread-safe: workers take them in their
    set-up threads; one thread of the pool makes them)."""

    def __init__(self, pods_dir: Path, node: str, *, with_tmp: bool, size: int = SIZE,
                 quiet: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic) -> None:
        self.pods_dir = pods_dir
        self.node = node
        self.with_tmp = with_tmp  # spares hold tmp/: only sandboxed pods may take them
        self.size = size
        self._quiet = quiet
        self._clock = clock
        self._lock = threading.Lock()
        self._ready: list[str] = []
        self._next = 0
        self._wake = threading.Event()
        self._stopping = False
        self._retry_at = 0.0  # no refill before (after a failure)
        self._failing = False  # the last refill failed (logged once until one succeeds)
        self._thread: threading.Thread | None = None
        self.taken = 0

    @property
    def ready(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name="pod-spares", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop refilling (blocking until the thread is done: no spare is left half made);
        the spares stay for the next agent."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """The node may be quiet now: refill if spares are missing (cheap; any thread)."""
        if len(self._ready) < self.size:
            self._wake.set()

    def fits(self, with_tmp: bool) -> bool:
        """Whether a spare is ready for a pod that needs ``tmp/`` or not (as ``with_tmp``)."""
        return with_tmp == self.with_tmp and bool(self._ready)

    def take(self, dest: Path, with_tmp: bool) -> bool:
        """Move a spare to ``dest`` (a new pod's directory, which must not exist); False when
        none fits (then the caller makes the directory as without spares)."""
        with self._lock:
            if not self.fits(with_tmp):
                return False
            name = self._ready.pop()
        try:
            os.rename(self.pods_dir / name, dest)
        except OSError as exc:  # dest is there after all, or the spare went: without it
            log.debug("spare %s: %s", name, exc)
            if os.path.isdir(self.pods_dir / name):
                with self._lock:
                    self._ready.append(name)
            return False
        self.taken += 1
        if self._quiet():  # else once the node is quiet again (wake): no thread hop during a start
            self._wake.set()
        return True

    # ------------------------------------------------------------- the thread

    def _run(self) -> None:
        try:
            self.adopt()
        except Exception:  # noqa: BLE001 - without the leftovers
            log.exception("spare pod directories: cannot check those left by an earlier agent")
        while True:
            woken = self._wake.wait(BUSY_REFILL)  # (a take while pods start does not wake it)
            self._wake.clear()
            if self._stopping:
                return
            self.refill(busy=not woken)

    def refill(self, busy: bool = False) -> None:
        """Make spares until there are ``size`` (blocking), while the node is quiet; ``busy``:
        one even if it is not (it has not been quiet for ``BUSY_REFILL``: a pod that stays in
        ContainerCreating, a steady stream of starts). After a failure, none before the
        back-off has passed."""
        while not self._stopping and len(self._ready) < self.size and (busy or self._quiet()):
            if self._clock() < self._retry_at or not self._make_one() or busy:
                return

    def adopt(self) -> None:
        """Reuse this node's spares an earlier agent left when laid out as ours; remove the rest."""
        umask = current_umask()
        keep: list[str] = []
        drop: list[str] = []
        for entry in os.scandir(self.pods_dir):
            index = own_index(entry.name, self.node)
            if index is None:
                continue
            self._next = max(self._next, index + 1)
            path = self.pods_dir / entry.name
            (keep if reusable(read_layout(path), self.with_tmp, umask) else drop).append(entry.name)
        for name in drop:
            shutil.rmtree(self.pods_dir / name, ignore_errors=True)
        surplus = keep[self.size:]
        for name in surplus:
            shutil.rmtree(self.pods_dir / name, ignore_errors=True)
        with self._lock:
            self._ready.extend(keep[:self.size])

    def _make_one(self) -> bool:
        name = f"{PREFIX}{self.node}-{self._next}"
        self._next += 1
        try:
            make_spare(self.pods_dir / name, self.with_tmp)
        except OSError as exc:
            self._retry_at = self._clock() + FAILURE_BACKOFF
            if not self._failing:
                log.warning("cannot make a spare pod directory (pods start without one): %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("spare pod directories are made again")
        self._failing = False
        with self._lock:
            self._ready.append(name)
        return True
