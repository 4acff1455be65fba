"""Pod volumes as host directories, and how a process finds them.

A host process cannot have its filesystem remounted, so a ``volumeMount`` is exposed two
ways: the environment variable ``JOBPLANE_VOLUME_<NAME>`` (volume name upper-cased,
non-alphanumerics as ``_``) always names the directory, and the ``mountPath`` becomes a
symlink to it when that path does not exist yet and its parent can be created.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from jobplane.agent.spec import sanitize_env_name

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def volume_dirs(pod: Obj, pod_dir: Path) -> dict[str, Path]:
    """Create each volume's directory: ``emptyDir`` under the pod directory, ``hostPath`` as
    given. Other types (configMap, secret, projected, ...) get an empty directory: jobplane
    serves no ConfigMaps or Secrets."""
    out: dict[str, Path] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        name = vol.get("name", "")
        if "hostPath" in vol:
            hp = vol["hostPath"] or {}
            path = Path(hp.get("path", "/"))
            if hp.get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif hp.get("type") == "FileOrCreate" and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
        else:
            if "emptyDir" not in vol:
                log.warning("volume %s: unsupported type, using an empty directory", name)
            path = pod_dir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
        out[name] = path
    return out


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
        if base is None or not mount_path:
            continue
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
