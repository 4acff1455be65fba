"""The ServiceAccount admission plugin's pod mutation (``plugin/pkg/admission/serviceaccount``):
pure. Every container of a new pod gets the API credentials at
``/var/run/secrets/kubernetes.io/serviceaccount`` from one projected volume
``kube-api-access-<5 random>`` (a bound service-account token, the cluster's CA from the
``kube-root-ca.crt`` ConfigMap, the namespace), unless the pod or its ServiceAccount sets
``automountServiceAccountToken: false`` or the container already mounts something there."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# serviceaccount.WarnOnlyBoundTokenExpirationSeconds: 1 h + 7 s, so that such tokens can be told apart
TOKEN_EXPIRATION = 3607
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def should_automount(pod: Obj, service_account: Obj | None) -> bool:
    """The pod's ``automountServiceAccountToken`` when set, else the ServiceAccount's, else true."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if service_account is not None and service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def token_volume_source() -> Obj:
    """``TokenVolumeSource``: the projected sources, defaultMode 0644 set explicitly."""
    return {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}


def mount_api_access(pod: Obj, volume_name: str) -> None:
    """``mountServiceAccountToken``: a read-only mount in each init and app container without
    one at the path; the volume (named ``volume_name`` unless the pod has one already) when
    a container took the mount."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    existing = next((v.get("name") for v in volumes if str(v.get("name") or "").startswith(VOLUME_PREFIX)), None)
    name = existing or volume_name
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            mounts = container.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]
