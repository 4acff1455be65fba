"""The per-container sandbox: a bubblewrap (``bwrap``) command line around the container's.

Each container runs as ``bwrap ... -- [setpriv ...] command args``: its own mount, PID and
UTS namespaces (as in Kubernetes, containers of a pod do not share a PID namespace), the
pod's hostname, the pod's ``/etc/hosts`` and ``/etc/hostname``, the pod's own ``/tmp``, the
agent's and server's data directories hidden behind empty tmpfs mounts, and every
``volumeMount`` bind-mounted at its ``mountPath`` (read-only when asked). The rest of the
host's file system stays visible read-write, and the network is the host's.

``--new-session`` makes the sandbox's init (bwrap's pid 1) and the command one process group
of their own, so the supervisor signals that group for a graceful stop (bwrap's outer
process would die of SIGTERM itself and take the sandbox with it).

Pure functions, plus ``detect`` (runs bwrap once at agent start).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from jobplane.agent.hostcache import Recent

SETPRIV = "/usr/bin/setpriv"
NSENTER = "/usr/bin/nsenter"


@dataclass(frozen=True)
class Mount:
    """A bind mount: host ``source`` at ``target`` inside the sandbox."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Identity:
    """Who the container's process runs as (None: the agent's own uid / gid / groups)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None

    @property
    def changes(self) -> bool:
        return self.uid is not None or self.gid is not None or self.groups is not None


@dataclass
class SandboxSpec:
    hostname: str
    hosts_file: str
    hostname_file: str
    tmp_dir: str
    mounts: list[Mount] = field(default_factory=list)
    hidden: tuple[str, ...] = ()
    identity: Identity = field(default_factory=Identity)


@dataclass(frozen=True)
class SandboxSupport:
    """What ``detect`` found: bwrap's path (None: no sandbox) and why not."""

    bwrap: str | None
    user_namespace: bool = False  # the agent is not root: bwrap needs --unshare-user
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.bwrap is not None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _agent_roots_under_tmp() -> tuple[str, ...]:
    """The agent's own installation (its Python prefix and the jobplane package) where it lies
    under /tmp: helpers the agent runs inside a sandbox (the attach relay) need it, and the
    pod's private /tmp would otherwise hide it. Bound read-only at the same path."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = {os.path.realpath(sys.prefix), os.path.realpath(package)}
    return tuple(sorted(r for r in roots if _under(r, "/tmp")))


AGENT_ROOTS_UNDER_TMP = _agent_roots_under_tmp()


def mount_point(target: str) -> str:
    """Where a ``mountPath`` is bound: through the host's symlinks on the way (bwrap creates a
    missing mount point itself but cannot through a symlink such as ``/var/run -> /run``);
    paths under the pod's own /tmp are taken as written."""
    return target if _under(target, "/tmp") else _real.get(target, lambda: os.path.realpath(target))


def _hidden_kind(path: str) -> str:
    """How a path the sandbox hides is hidden: a directory under a tmpfs, anything else under
    /dev/null ("" when it does not exist)."""
    return "dir" if os.path.isdir(path) else "other" if os.path.lexists(path) else ""


# Per container start on the event loop: the realpath of each mount point (an lstat per component)
# and the kind of each hidden path; kept hostcache.TTL seconds.
_real: Recent[str] = Recent()
_hidden: Recent[str] = Recent()


def bwrap_argv(support: SandboxSupport, spec: SandboxSpec, argv: list[str], cwd: str | None) -> list[str]:
    """The full command line that runs ``argv`` in the sandbox ``spec`` describes."""
    assert support.bwrap is not None
    out = [support.bwrap, "--dev-bind", "/", "/"]
    if support.user_namespace:
        out.append("--unshare-user")
    out += ["--unshare-pid", "--unshare-uts", "--hostname", spec.hostname, "--die-with-parent", "--new-session",
            "--proc", "/proc", "--bind", spec.tmp_dir, "/tmp"]
    for root in AGENT_ROOTS_UNDER_TMP:
        out += ["--ro-bind", root, root]
    for path in spec.hidden:
        if _under(path, "/tmp"):
            continue  # already out of sight: /tmp is the pod's own
        kind = _hidden.get(path, functools.partial(_hidden_kind, path))
        if kind == "dir":
            out += ["--tmpfs", path]
        elif kind:
            out += ["--ro-bind", "/dev/null", path]
    out += ["--bind", spec.hosts_file, "/etc/hosts", "--bind", spec.hostname_file, "/etc/hostname"]
    binds = [(m, mount_point(m.target)) for m in spec.mounts]
    for m, target in sorted(binds, key=lambda b: b[1].rstrip("/").count("/")):
        out += ["--ro-bind" if m.read_only else "--bind", m.source, target]
    if cwd:
        out += ["--chdir", cwd]
    out.append("--")
    out += identity_prefix(spec.identity)
    out += argv
    return out


def identity_prefix(identity: Identity) -> list[str]:
    """``setpriv`` switching to the container's user, groups first (root agents only)."""
    if not identity.changes:
        return []
    out = [SETPRIV]
    if identity.gid is not None:
        out += ["--regid", str(identity.gid)]
    if identity.groups is not None:
        out += ["--groups", ",".join(str(g) for g in identity.groups)] if identity.groups else ["--clear-groups"]
    if identity.uid is not None:
        out += ["--reuid", str(identity.uid)]
    return [*out, "--"]


def enter_argv(target_pid: int, identity: Identity) -> list[str]:
    """The argv prefix that runs a command inside a running container's sandbox, as that
    container's user: ``nsenter`` into the mount, UTS and PID namespaces of ``target_pid``
    (the container's main process as the host sees it), in its root and working directory.
    Append the command; give it the container's environment (``/proc/<pid>/environ``)."""
    return [NSENTER, "--target", str(target_pid), "--mount", "--uts", "--pid", "--root", "--wd", "--",
            *identity_prefix(identity)]


def detect(bwrap: str | None = None) -> SandboxSupport:
    """Can this agent sandbox its containers? Tries bwrap once with the namespaces we use."""
    path = bwrap or shutil.which("bwrap")
    if not path:
        return SandboxSupport(None, reason="bubblewrap (bwrap) is not installed")
    user_ns = os.geteuid() != 0
    probe = [path, "--dev-bind", "/", "/", *(["--unshare-user"] if user_ns else []),
             "--unshare-pid", "--unshare-uts", "--hostname", "probe", "--die-with-parent", "--new-session",
             "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxSupport(None, reason=f"bwrap cannot run: {exc}")
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        return SandboxSupport(None, reason=f"bwrap cannot create namespaces here: {why[-1] if why else result.returncode}")
    return SandboxSupport(path, user_namespace=user_ns)
