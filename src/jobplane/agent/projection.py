"""ConfigMap, Secret, downward API and projected volume contents, written as kubelet does.

``payload`` (pure) turns a volume and the objects it references into ``{path: (bytes, mode)}``;
``write_atomic`` puts a payload in the volume directory the way kubelet's AtomicWriter does:
the files live in a timestamped directory ``..<time>``, the symlink ``..data`` points at it,
and each visible top-level name is a symlink through ``..data``. An update writes a new
timestamped directory and renames a new ``..data`` over the old one, so a reader sees the
old set or the new set, never a mix.

Upstream: ``pkg/volume/configmap``, ``pkg/volume/secret``, ``pkg/volume/downwardapi``,
``pkg/volume/projected``, ``pkg/volume/util/atomic_writer.go``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobplane.agent.spec import ContainerConfigError, field_ref_value, resource_field_value
from jobplane.agent.volumes import MountError

Obj = dict[str, Any]
Payload = dict[str, tuple[bytes, int]]
DEFAULT_MODE = 0o644
DATA_LINK = "..data"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# A reference the payload needs: ("configmaps"|"secrets", name) or ("token", audience, expiry).
Ref = tuple[Any, ...]


def references(vol: Obj) -> list[Ref]:
    """The objects (and tokens) a volume's contents come from."""
    out: list[Ref] = []
    if "configMap" in vol:
        out.append(("configmaps", (vol["configMap"] or {}).get("name", "")))
    if "secret" in vol:
        out.append(("secrets", (vol["secret"] or {}).get("secretName", "")))
    for src in ((vol.get("projected") or {}).get("sources") or ()):
        if "configMap" in src:
            out.append(("configmaps", (src["configMap"] or {}).get("name", "")))
        if "secret" in src:
            out.append(("secrets", (src["secret"] or {}).get("name", "")))
        if "serviceAccountToken" in src:
            t = src["serviceAccountToken"] or {}
            out.append(("token", t.get("audience") or "", int(t.get("expirationSeconds") or 3600)))
    return out


def _check_path(volume: str, path: str) -> str:
    if not path or os.path.isabs(path) or ".." in path.split("/"):
        raise MountError(volume, f"invalid path {path!r}: must be relative and may not contain '..'")
    return path


def _keyed(volume: str, kind: str, obj_name: str, data: dict[str, bytes], items: list[Obj] | None,
           mode: int, optional: bool, out: Payload) -> None:
    """configMap/secret files: every key, or only ``items`` (key -> path, mode)."""
    if not items:
        for key, value in data.items():
            out[_check_path(volume, key)] = (value, mode)
        return
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise MountError(volume, f"{kind} references non-existent config key: {key}")
        item_mode = item.get("mode")
        out[_check_path(volume, item.get("path") or key)] = (data[key], mode if item_mode is None else int(item_mode))


def _configmap_data(obj: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _secret_data(obj: Obj) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    return data


def _downward(volume: str, pod: Obj, items: list[Obj], mode: int, out: Payload) -> None:
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or ()}
    for item in items:
        path = _check_path(volume, item.get("path", ""))
        item_mode = item.get("mode")
        try:
            if "fieldRef" in item:
                value = field_ref_value(pod, (item["fieldRef"] or {}).get("fieldPath", ""))
            elif "resourceFieldRef" in item:
                ref = item["resourceFieldRef"] or {}
                container = containers.get(ref.get("containerName"))
                if container is None:
                    raise MountError(volume, f"resourceFieldRef: no container {ref.get('containerName')!r}")
                value = resource_field_value(pod, container, ref, {})
            else:
                continue
        except ContainerConfigError as exc:
            raise MountError(volume, exc.message) from None
        out[path] = (value.encode(), mode if item_mode is None else int(item_mode))


def payload(vol: Obj, pod: Obj, lookup: Callable[[Ref], Any]) -> Payload:
    """The files of a configMap/secret/downwardAPI/projected volume. ``lookup(ref)`` returns
    the referenced object (None when it does not exist) or, for a token ref, the token."""
    name = vol.get("name", "")
    out: Payload = {}
    if "configMap" in vol:
        _object_source(name, "configmap", vol["configMap"] or {}, "name", _configmap_data, lookup, out,
                       int((vol["configMap"] or {}).get("defaultMode", DEFAULT_MODE)))
    elif "secret" in vol:
        _object_source(name, "secret", vol["secret"] or {}, "secretName", _secret_data, lookup, out,
                       int((vol["secret"] or {}).get("defaultMode", DEFAULT_MODE)))
    elif "downwardAPI" in vol:
        dapi = vol["downwardAPI"] or {}
        _downward(name, pod, dapi.get("items") or [], int(dapi.get("defaultMode", DEFAULT_MODE)), out)
    elif "projected" in vol:
        proj = vol["projected"] or {}
        mode = int(proj.get("defaultMode", DEFAULT_MODE))
        for src in proj.get("sources") or ():
            if "configMap" in src:
                _object_source(name, "configmap", src["configMap"] or {}, "name", _configmap_data, lookup, out, mode)
            elif "secret" in src:
                _object_source(name, "secret", src["secret"] or {}, "name", _secret_data, lookup, out, mode)
            elif "downwardAPI" in src:
                _downward(name, pod, (src["downwardAPI"] or {}).get("items") or [], mode, out)
            elif "serviceAccountToken" in src:
                t = src["serviceAccountToken"] or {}
                token = lookup(("token", t.get("audience") or "", int(t.get("expirationSeconds") or 3600)))
                out[_check_path(name, t.get("path", ""))] = (str(token).encode(), mode)
            else:
                kinds = [k for k in src]
                raise MountError(name, f"projected source {kinds[0] if kinds else '(none)'} is not supported")
    return out


def _object_source(volume: str, kind: str, ref: Obj, name_field: str, decode: Callable[[Obj], dict[str, bytes]],
                   lookup: Callable[[Ref], Any], out: Payload, mode: int) -> None:
    obj_name = ref.get(name_field, "")
    optional = bool(ref.get("optional"))
    obj = lookup((kind + "s", obj_name))
    if obj is None:
        if optional:
            return
        raise MountError(volume, f'{kind} "{obj_name}" not found')
    _keyed(volume, kind, obj_name, decode(obj), ref.get("items"), mode, optional, out)


# ------------------------------------------------------------------ the atomic writer

def _read_current(target: Path) -> Payload | None:
    data_dir = target / DATA_LINK
    if not data_dir.is_dir():
        return None
    out: Payload = {}
    for root, _dirs, files in os.walk(data_dir):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(data_dir))] = (p.read_bytes(), p.stat().st_mode & 0o777)
    return out


def write_atomic(target: Path, files: Payload, group: int | None = None, new: bool = False) -> bool:
    """Make ``target`` hold exactly ``files``; False when it already did. ``group``
    (the pod's fsGroup) owns the files and may read them. ``new``: the caller has just created
    ``target`` (empty): nothing to compare, replace or clean up, so ``..data`` is made in place
    (about half the system calls; the same layout)."""
    if not new:
        if _read_current(target) == {p: (d, _mode(m, group)) for p, (d, m) in files.items()}:
            return False
        target.mkdir(exist_ok=True)  # not its parents: a refresh racing the pod's removal must not revive them
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
    new_dir = target / stamp
    new_dir.mkdir(mode=0o755)
    for rel, (data, mode) in files.items():
        path = new_dir / rel
        if "/" in rel:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            if group is not None:
                os.fchown(fd, -1, group)
            os.fchmod(fd, _mode(mode, group))
        finally:
            os.close(fd)
    if group is not None:
        for root, dirs, _files in os.walk(new_dir):
            for d in [root, *(os.path.join(root, x) for x in dirs)]:
                os.chown(d, -1, group)
    visible = {rel.split("/", 1)[0] for rel in files}
    if new:
        (target / DATA_LINK).symlink_to(stamp)
        for name in visible - {DATA_LINK}:
            (target / name).symlink_to(f"{DATA_LINK}/{name}")
        return True
    old = os.readlink(target / DATA_LINK) if (target / DATA_LINK).is_symlink() else None
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    os.rename(tmp_link, target / DATA_LINK)
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for child in target.iterdir():
        if child.name.startswith(".."):
            continue
        if child.is_symlink() and child.name not in visible:
            child.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _mode(mode: int, group: int | None) -> int:
    return (mode | 0o040) & 0o777 if group is not None else mode & 0o777
