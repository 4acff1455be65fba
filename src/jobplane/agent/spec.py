"""From a pod's container spec to what a process needs: environment, argv, working directory.

Pure functions. Upstream sources: ``third_party/forked/golang/expansion`` ($(VAR)
expansion), ``pkg/kubelet/kubelet_pods.go`` (makeEnvironmentVariables, podFieldSelectorRuntimeValue).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Hashable
from typing import Any

from jobplane.agent.hostcache import Recent
from jobplane.agent.podconfig import Sources, missing_message, values
from jobplane.api.resources import GPU, container_limit, quantity
from jobplane.api.validation.names import is_env_var_name

Obj = dict[str, Any]


CONFIG_ERROR = "CreateContainerConfigError"


class ContainerConfigError(Exception):
    """The container cannot be started as configured. ``retry``: it waits for something that
    may yet appear (a ConfigMap, a Secret, a key), as kubelet keeps such a container waiting;
    otherwise it is reported as the container's failure."""

    def __init__(self, reason: str, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are replaced, undefined ones are left
    as written, ``$$`` is an escaped ``$``, any other ``$`` is literal."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2:end]
            if name in env:
                out.append(env[name])
            else:
                out.append(text[i:end + 1])
            i = end + 1
        else:
            out.append("$")
            out.append(nxt)
            i += 2
    return "".join(out)


_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_ref_value(pod: Obj, path: str, host_ip: str = "127.0.0.1") -> str:
    """``valueFrom.fieldRef.fieldPath`` as kubelet resolves it."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _LABEL_PATH.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP") or host_ip,
        "status.podIP": status.get("podIP") or host_ip,
        "status.hostIPs": status.get("hostIP") or host_ip,
        "status.podIPs": status.get("podIP") or host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ContainerConfigError("CreateContainerConfigError", f"unsupported fieldPath: {path}")


def resource_field_value(pod: Obj, container: Obj, ref: Obj, node_capacity: dict[str, float]) -> str:
    name = ref.get("containerName")
    if name:
        for c in (pod.get("spec") or {}).get("containers") or ():
            if c.get("name") == name:
                container = c
    section, _, resource = str(ref.get("resource", "")).partition(".")
    divisor = quantity(ref.get("divisor") or 1)
    raw = ((container.get("resources") or {}).get(section) or {}).get(resource)
    value = quantity(raw) if raw is not None else node_capacity.get(resource, 0.0)
    return str(int(math.ceil(value / divisor)))


def _env_from(env: dict[str, str], src: Obj, sources: Sources) -> None:
    for kind, field in (("configmap", "configMapRef"), ("secret", "secretRef")):
        ref = src.get(field)
        if not ref:
            continue
        name = ref.get("name") or ""
        obj = sources.get((kind, name))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(CONFIG_ERROR, missing_message(kind, name), retry=True)
        prefix = src.get("prefix") or ""
        for key, data in values(obj, kind).items():
            if not is_env_var_name(prefix + key):  # kubelet skips them (and says so in an event)
                env[prefix + key] = data.decode("utf-8", "replace")


def _key_ref(pod: Obj, vf: Obj, sources: Sources) -> str | None:
    kind, ref = ("configmap", vf["configMapKeyRef"]) if vf.get("configMapKeyRef") else \
        ("secret", vf.get("secretKeyRef") or {})
    name, key = ref.get("name") or "", ref.get("key") or ""
    obj = sources.get((kind, name))
    if obj is None:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(CONFIG_ERROR, missing_message(kind, name), retry=True)
    content = values(obj, kind)
    if key not in content:
        if ref.get("optional"):
            return None
        ns = (pod.get("metadata") or {}).get("namespace") or "default"
        what = "ConfigMap" if kind == "configmap" else "Secret"
        raise ContainerConfigError(CONFIG_ERROR, f"couldn't find key {key} in {what} {ns}/{name}", retry=True)
    return content[key].decode("utf-8", "replace")


def build_env(pod: Obj, container: Obj, base: dict[str, str] | None = None,
              extra: dict[str, str] | None = None,
              node_capacity: dict[str, float] | None = None,
              sources: Sources | None = None, pod_ip: str = "127.0.0.1") -> dict[str, str]:
    """The process environment: ``base`` (the host's), then ``extra`` (agent-provided,
    e.g. volume paths), then ``envFrom`` and the container's ``env`` in order, each value
    expanded against what is defined before it, as kubelet does. ConfigMaps and Secrets come
    from ``sources`` (``podconfig.fetch``); one that is missing raises a retryable error.
    ``pod_ip`` answers ``status.podIP``/``hostIP`` before the pod's status has them."""
    env: dict[str, str] = dict(base or {})
    env.update(extra or {})
    sources = sources or {}
    for src in container.get("envFrom") or ():
        _env_from(env, src, sources)
    for item in container.get("env") or ():
        name = item.get("name")
        if not name:
            continue
        vf = item.get("valueFrom")
        if vf is None:
            env[name] = expand(str(item.get("value", "")), env)
        elif "fieldRef" in vf:
            env[name] = field_ref_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip)
        elif "resourceFieldRef" in vf:
            env[name] = resource_field_value(pod, container, vf["resourceFieldRef"], node_capacity or {})
        else:
            value = _key_ref(pod, vf, sources)
            if value is not None:
                env[name] = value
    return env


def build_argv(container: Obj, env: dict[str, str]) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded. Without ``command`` the ``args`` are
    the command line (an image without an ENTRYPOINT runs its CMD, which ``args`` replaces);
    with neither there is nothing to run: images are not used, their entrypoints are unknown."""
    command = [expand(str(a), env) for a in container.get("command") or ()]
    args = [expand(str(a), env) for a in container.get("args") or ()]
    if not command and not args:
        raise ContainerConfigError(
            "StartError",
            f'container "{container.get("name")}" has no command: jobplane runs processes on the host '
            "and does not run images, so spec.containers[].command (or args) is required")
    return command + args


def resolve_executable(argv0: str, env: dict[str, str], cwd: str | None,
                       host_path: Callable[[str], str] | None = None, view_key: Hashable = None) -> str:
    """Path of the program as the container sees it, looked up on the container's PATH
    (never via a shell). ``host_path`` maps a path in the container's view (its volume
    mounts) to the host's, where the check is made; ``view_key`` is what that mapping depends
    on (the mount targets), under which the answer is kept (None: searched every time)."""
    if "/" in argv0:
        path = os.path.normpath(argv0 if os.path.isabs(argv0) else os.path.join(cwd or os.getcwd(), argv0))
        real = host_path(path) if host_path else path
        if os.access(real, os.X_OK) and not os.path.isdir(real):
            return path
        raise ContainerConfigError("StartError", _exec_error(argv0, "no such file or directory"))
    search = env.get("PATH", os.defpath)

    def every_time() -> str:  # the walk through the container's view, not kept
        return _walk(argv0, _candidates(argv0, search), host_path)

    if host_path is not None:
        if view_key is None:
            return every_time()
        key: tuple[str, str, Hashable] = (argv0, search, view_key)

        def compute() -> str:
            candidates = _candidates(argv0, search)
            if [host_path(c) for c in candidates] != candidates:
                return ""  # a volume covers a PATH directory: its contents are the pod's, searched every time
            return _walk(argv0, candidates, None)  # the container sees the host's PATH directories
    else:
        key = (argv0, search, None)

        def compute() -> str:
            found = shutil.which(argv0, path=search)
            if not found:
                raise ContainerConfigError("StartError", _exec_error(argv0, "executable file not found in $PATH"))
            return found
    # A hit costs one access() (a program removed since is not started) instead of a PATH walk;
    # after hostcache.TTL the walk is made again (a program installed earlier on PATH wins then).
    found = _programs.get(key, compute)
    if found and not os.access(found, os.X_OK):
        _programs.forget(key)
        found = _programs.get(key, compute)
    return found or every_time()


def _candidates(argv0: str, search: str) -> list[str]:
    return [os.path.join(d or ".", argv0) for d in search.split(os.pathsep)]


def _walk(argv0: str, candidates: list[str], host_path: Callable[[str], str] | None) -> str:
    for candidate in candidates:
        real = host_path(candidate) if host_path else candidate
        if os.access(real, os.X_OK) and not os.path.isdir(real):
            return candidate
    raise ContainerConfigError("StartError", _exec_error(argv0, "executable file not found in $PATH"))


_programs: Recent[str] = Recent()  # (name, PATH, the sandbox's mount targets) -> the program found there


def _exec_error(argv0: str, why: str) -> str:
    # containerd's wording, which kubectl users recognise.
    return ('failed to create containerd task: failed to create shim task: OCI runtime create failed: '
            f'runc create failed: unable to start container process: exec: "{argv0}": {why}: unknown')


def gpu_count(container: Obj) -> int:
    return int(container_limit(container, GPU) or 0)


def sanitize_env_name(name: str) -> str:
    """``my-vol.data`` -> ``MY_VOL_DATA`` for JOBPLANE_VOLUME_* variables."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()
