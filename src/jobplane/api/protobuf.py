"""Decoder for Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``),
driven by the shipped field map. kubectl's typed ``create`` subcommands (job, cronjob, namespace,
configmap, secret, serviceaccount, service, token) send these.

The typed Go client writes every non-pointer field, zero or not, so zero scalars are dropped
as Go's ``omitempty`` would (except pointer fields, where zero is a real value, listed in
``_KEEP_ZERO``). Embedded messages are kept when present, even empty (``resources: {}``),
because Go writes them exactly when the JSON encoder would.
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson

from jobplane.api import errors

MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_TIME = _META + "Time"
_MICROTIME = _META + "MicroTime"
_FIELDS = _META + "FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INTSTR = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAWEXT = "k8s.io.apimachinery.pkg.runtime.RawExtension"

_SCALARS = frozenset({"int32", "int64", "uint32", "uint64", "bool", "string", "bytes", "sint32", "sint64"})

# Pointer scalar fields (message short name -> json names) whose zero value is meaningful
# (``backoffLimit: 0``, ``suspend: false``): Go sends them only when set, so keep them.
_KEEP_ZERO: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "JobSpec": "parallelism completions activeDeadlineSeconds backoffLimit backoffLimitPerIndex "
                   "maxFailedIndexes manualSelector ttlSecondsAfterFinished completionMode suspend "
                   "podReplacementPolicy managedBy",
        "JobStatus": "ready terminating failedIndexes",
        "CronJobSpec": "startingDeadlineSeconds suspend successfulJobsHistoryLimit failedJobsHistoryLimit timeZone",
        "PodFailurePolicyOnExitCodesRequirement": "containerName",
        "SuccessPolicyRule": "succeededIndexes succeededCount",
        "PodSpec": "terminationGracePeriodSeconds activeDeadlineSeconds automountServiceAccountToken "
                   "shareProcessNamespace priority enableServiceLinks preemptionPolicy hostUsers "
                   "setHostnameAsFQDN runtimeClassName",
        "PodSecurityContext": "runAsUser runAsGroup runAsNonRoot fsGroup fsGroupChangePolicy "
                              "supplementalGroupsPolicy seLinuxChangePolicy",
        "SecurityContext": "privileged runAsUser runAsGroup runAsNonRoot readOnlyRootFilesystem "
                           "allowPrivilegeEscalation procMount",
        "Probe": "terminationGracePeriodSeconds",
        "Container": "restartPolicy",
        "ConfigMapVolumeSource": "defaultMode optional",
        "SecretVolumeSource": "defaultMode optional",
        "ProjectedVolumeSource": "defaultMode",
        "DownwardAPIVolumeSource": "defaultMode",
        "KeyToPath": "mode",
        "DownwardAPIVolumeFile": "mode",
        "ConfigMapKeySelector": "optional",
        "SecretKeySelector": "optional",
        "ConfigMapEnvSource": "optional",
        "SecretEnvSource": "optional",
        "ConfigMapProjection": "optional",
        "SecretProjection": "optional",
        "HostPathVolumeSource": "type",
        "ContainerStatus": "started",
        "ObjectMeta": "deletionGracePeriodSeconds",
        "OwnerReference": "controller blockOwnerDeletion",
        "DeleteOptions": "gracePeriodSeconds orphanDependents propagationPolicy "
                         "ignoreStoreReadErrorWithClusterBreakingPotential",
        "Preconditions": "uid resourceVersion",
        "ConfigMap": "immutable",
        "Secret": "immutable",
        "ServiceAccount": "automountServiceAccountToken",
        "ServiceSpec": "allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy ipFamilyPolicy "
                       "trafficDistribution",
        "ClientIPConfig": "timeoutSeconds",
        "ServicePort": "appProtocol",
        "TokenRequestSpec": "expirationSeconds",
        "BoundObjectReference": "",
        "EndpointConditions": "ready serving terminating",
        "Endpoint": "hostname nodeName zone",
        "EndpointPort": "name protocol port appProtocol",
        "StorageClass": "reclaimPolicy allowVolumeExpansion volumeBindingMode",
        "PersistentVolumeClaimSpec": "storageClassName volumeMode volumeAttributesClassName",
        "PersistentVolumeSpec": "volumeMode volumeAttributesClassName",
    }.items()
}
_NO_KEEP: frozenset[str] = frozenset()

# Embedded Go structs with ``json:",inline"``: their fields belong to the parent object.
_INLINE = frozenset({"handler", "volumeSource", "ephemeralContainerCommon", "localObjectReference",
                     "persistentVolumeSource"})

# (json name, type, repeated, map key/value types)
Field = tuple[str, str, bool, tuple[str, str] | None]


@functools.cache
def _fieldmap() -> dict[str, dict[int, Field]]:
    data = resources.files("jobplane") / "data"
    messages: dict[str, Any] = {}
    # the main map, then the groups kept in their own files (one per area of the API)
    for path in sorted(data.iterdir(), key=lambda p: (p.name != "protobuf-fieldmap-v1.32.json", p.name)):
        if path.name.startswith("protobuf-fieldmap-v1.32") and path.name.endswith(".json"):
            messages.update(orjson.loads(path.read_bytes())["messages"])
    out: dict[str, dict[int, Field]] = {}
    for msg, fields in messages.items():
        out[msg] = {
            int(num): (e[0], e[1], e[2] == "repeated", tuple(e[3]) if len(e) > 3 and e[3] else None)
            for num, e in fields.items()
        }
    return out


class _Malformed(Exception):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _Malformed("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Split a message into (field number, wire type, int-or-bytes) in wire order."""
    out: list[tuple[int, int, Any]] = []
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        num, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise _Malformed("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > end:
            raise _Malformed("truncated field")
        out.append((num, wire, value))
    return out


def _signed(value: int, bits: int = 64) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return value.decode("utf-8") if isinstance(value, bytes) else ""
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else ""
    if not isinstance(value, int):
        raise _Malformed(f"expected a varint for {kind}")
    if kind == "bool":
        return value != 0
    if kind == "int32":
        return _signed(value, 32)
    if kind == "int64":
        return _signed(value)
    if kind in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    return value


def _packed(kind: str, data: bytes) -> list[Any]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(_scalar(kind, value))
    return out


def _time(data: bytes, micro: bool) -> str | None:
    seconds = nanos = 0
    for num, _wire, value in _fields(data):
        if num == 1:
            seconds = _signed(value)
        elif num == 2:
            nanos = _signed(value, 32)
    if seconds == 0 and nanos == 0:
        return None
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=nanos // 1000)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _special(kind: str, data: bytes) -> Any:
    """Messages with a custom JSON form; returns ``_ABSENT`` to omit the field."""
    if kind in (_TIME, _MICROTIME):
        value = _time(data, kind == _MICROTIME)
        return _ABSENT if value is None else value
    fields = {num: value for num, _wire, value in _fields(data)}
    if kind == _QUANTITY:
        return _scalar("string", fields.get(1, b""))
    if kind == _INTSTR:
        if fields.get(1, 0) == 1:
            return _scalar("string", fields.get(3, b""))
        return _signed(fields.get(2, 0), 32)
    raw = fields.get(1, b"")  # RawExtension / FieldsV1: raw JSON
    if not raw:
        return _ABSENT
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return base64.b64encode(raw).decode("ascii")


_ABSENT = object()
_SPECIAL = frozenset({_TIME, _MICROTIME, _QUANTITY, _INTSTR, _RAWEXT, _FIELDS})


def _value(kind: str, wire: int, value: Any) -> Any:
    if kind in _SCALARS:
        return _scalar(kind, value)
    if not isinstance(value, bytes):
        raise _Malformed(f"expected a message for {kind}")
    if kind in _SPECIAL:
        return _special(kind, value)
    return _message(kind, value)


def _default(kind: str) -> Any:
    """The wire value of an absent field (proto omits zero map keys/values)."""
    return 0 if kind in _SCALARS and kind not in ("string", "bytes") else b""


def _message(name: str, data: bytes) -> dict[str, Any]:
    spec = _fieldmap().get(name)
    if spec is None:
        raise _Malformed(f"no field map for {name}")
    keep_zero = _KEEP_ZERO.get(name.rsplit(".", 1)[-1], _NO_KEEP)
    out: dict[str, Any] = {}
    for num, wire, raw in _fields(data):
        field = spec.get(num)
        if field is None:
            continue
        json_name, kind, repeated, map_types = field
        if kind == "map" and map_types is not None:
            entry = {n: v for n, _w, v in _fields(raw)} if isinstance(raw, bytes) else {}
            key = _value(map_types[0], 2, entry.get(1, _default(map_types[0])))
            val = _value(map_types[1], 2, entry.get(2, _default(map_types[1])))
            out.setdefault(json_name, {})[key] = None if val is _ABSENT else val
        elif repeated:
            items = out.setdefault(json_name, [])
            if kind in _SCALARS and wire == 2 and kind not in ("string", "bytes"):
                items.extend(_packed(kind, raw))
            else:
                value = _value(kind, wire, raw)
                items.append(None if value is _ABSENT else value)
        else:
            value = _value(kind, wire, raw)
            if json_name in _INLINE and isinstance(value, dict):
                out.update(value)
            elif value is _ABSENT:
                out.pop(json_name, None)
            elif kind in _SCALARS and not value and value is not None and json_name not in keep_zero:
                out.pop(json_name, None)  # omitempty
            else:
                out[json_name] = value
    return {k: v for k, v in out.items() if not (isinstance(v, list | dict) and not v and k in _repeated_names(name))}


@functools.cache
def _repeated_names(name: str) -> frozenset[str]:
    return frozenset(f[0] for f in _fieldmap()[name].values() if f[2] or f[1] == "map")


def _message_name(api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    messages = _fieldmap()
    candidates = []
    if group:
        candidates.append(f"k8s.io.api.{group.split('.')[0]}.{version}.{kind}")
    else:
        candidates.append(f"k8s.io.api.core.{version}.{kind}")
    candidates.append(_META + kind)
    for name in candidates:
        if name in messages:
            return name
    return None


def decode(data: bytes, kind: str = "", api_version: str = "") -> dict[str, Any]:
    """``k8s\\0`` + runtime.Unknown -> the object as JSON-style dict (zero values dropped,
    as Go's omitempty would), with ``apiVersion`` and ``kind`` set.

    ``kind``/``api_version`` are used when the envelope's TypeMeta leaves them empty; with
    neither given nor sent the body is taken as a ``DeleteOptions`` (the one body clients send
    without a TypeMeta). Raises ``StatusError`` 400 on a malformed body."""
    if not data.startswith(MAGIC):
        raise errors.bad_request("the body of the request is not a Kubernetes protobuf message (missing k8s\\0 prefix)")
    try:
        envelope = {num: value for num, _wire, value in _fields(data[len(MAGIC):])}
        type_meta = {num: value for num, _wire, value in _fields(envelope.get(1, b""))}
        api_version = _scalar("string", type_meta.get(1, b"")) or api_version
        kind = _scalar("string", type_meta.get(2, b"")) or kind
        if not kind and not api_version:
            kind, api_version = "DeleteOptions", "v1"
        encoding = _scalar("string", envelope.get(3, b""))
        if encoding:
            raise _Malformed(f"unsupported content encoding {encoding!r}")
        name = _message_name(api_version, kind)
        if name is None:
            raise _Malformed(f"no kind {kind!r} is registered for version {api_version!r}")
        body = _message(name, envelope.get(2, b""))
    except _Malformed as exc:
        raise errors.bad_request(f"failed to decode protobuf body: {exc}") from None
    except UnicodeDecodeError:
        raise errors.bad_request("failed to decode protobuf body: invalid UTF-8 in a string field") from None
    out: dict[str, Any] = {}
    if api_version:
        out["apiVersion"] = api_version
    if kind:
        out["kind"] = kind
    out.update(body)
    return out
