"""``securityContext`` as the container's identity: runAsUser, runAsGroup,
supplementalGroups, fsGroup and runAsNonRoot (pod level, overridden per container).

Pure. A root agent switches to the identity asked for (``setpriv`` in the sandbox); an agent
that is not root cannot, so a container asking for another user or group fails with
CreateContainerConfigError instead of silently running as the agent's user.
Upstream: ``pkg/kubelet/kuberuntime/security_context_others.go`` (verifyRunAsNonRoot).
"""

from __future__ import annotations

from typing import Any

from jobplane.agent.sandbox import Identity
from jobplane.agent.spec import ContainerConfigError

Obj = dict[str, Any]


def _effective(pod: Obj, container: Obj, key: str) -> Any:
    csc = container.get("securityContext") or {}
    if csc.get(key) is not None:
        return csc[key]
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(key)


def fs_group(pod: Obj) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return None if value is None else int(value)


def identity(pod: Obj, container: Obj, agent_uid: int, agent_groups: set[int]) -> Identity:
    """The identity the container runs as; ContainerConfigError when it cannot be honoured."""
    meta = pod.get("metadata") or {}
    pod_ref = f'{meta.get("name")}_{meta.get("namespace")}({meta.get("uid")})'
    uid = _effective(pod, container, "runAsUser")
    gid = _effective(pod, container, "runAsGroup")
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    groups = [int(g) for g in psc.get("supplementalGroups") or ()]
    fsg = fs_group(pod)
    if fsg is not None and fsg not in groups:
        groups.append(fsg)
    if _effective(pod, container, "runAsNonRoot"):
        effective_uid = agent_uid if uid is None else int(uid)
        if uid is not None and int(uid) == 0:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f'container\'s runAsUser breaks non-root policy (pod: "{pod_ref}", container: {container.get("name")})')
        if effective_uid == 0:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f'container has runAsNonRoot and image will run as root (pod: "{pod_ref}", '
                f'container: {container.get("name")})')
    if uid is None and gid is None and not groups:
        return Identity()
    if agent_uid != 0:
        wrong = []
        if uid is not None and int(uid) != agent_uid:
            wrong.append(f"runAsUser {uid}")
        if gid is not None and int(gid) not in agent_groups:
            wrong.append(f"runAsGroup {gid}")
        wrong += [f"group {g}" for g in groups if g not in agent_groups]
        if wrong:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"cannot run container {container.get('name')} with {', '.join(wrong)}: the jobplane agent "
                f"runs as uid {agent_uid}, not root, and can only run containers as itself")
        return Identity()
    if uid is not None and gid is None:
        gid = 0  # as runc: no image user database, so the primary group is root's
    return Identity(uid=None if uid is None else int(uid), gid=None if gid is None else int(gid),
                    groups=tuple(groups))
