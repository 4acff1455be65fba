"""Protobuf request bodies: kubectl's captured body, and round trips through a test encoder."""

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jobplane.api import protobuf
from jobplane.api.errors import StatusError

WIRE = Path("/work/shared/kubectl-wire")
HELLO_JSON = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"},
              "spec": {"template": {"metadata": {}, "spec": {
                  "containers": [{"name": "hello", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                  "restartPolicy": "Never"}}},
              "status": {}}


# --- a tiny encoder, test only: writes what the Go client writes, zero fields included ---

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _ld(num: int, payload: bytes) -> bytes:
    return _tag(num, 2) + _varint(len(payload)) + payload


def _enc_value(kind: str, value: Any) -> tuple[int, bytes]:
    """(wire type, payload without tag) for one value."""
    if kind == "string":
        return 2, value.encode()
    if kind == "bytes":
        return 2, base64.b64decode(value)
    if kind in ("int32", "int64"):
        return 0, _varint(int(value))
    if kind == "bool":
        return 0, _varint(1 if value else 0)
    if kind.endswith(".Time"):
        ts = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return 2, _tag(1, 0) + _varint(int(ts)) + _tag(2, 0) + _varint(0)
    if kind.endswith(".Quantity"):
        return 2, _ld(1, str(value).encode())
    if kind.endswith(".IntOrString"):
        if isinstance(value, int):
            return 2, _tag(1, 0) + _varint(0) + _tag(2, 0) + _varint(value) + _ld(3, b"")
        return 2, _tag(1, 0) + _varint(1) + _tag(2, 0) + _varint(0) + _ld(3, value.encode())
    return 2, encode_message(kind, value)


# Inline Go structs travel as their own message on the wire.
_INLINE_TYPES = {"handler": "k8s.io.api.core.v1.ProbeHandler", "volumeSource": "k8s.io.api.core.v1.VolumeSource",
                 "localObjectReference": "k8s.io.api.core.v1.LocalObjectReference"}


def encode_message(name: str, obj: dict[str, Any], zeros: bool = True) -> bytes:
    spec = protobuf._fieldmap()[name]
    out = bytearray()
    for num in sorted(spec):
        json_name, kind, repeated, map_types = spec[num]
        if json_name in _INLINE_TYPES:
            inner = {k: v for k, v in obj.items() if k not in {f[0] for f in spec.values()}}
            out += _ld(num, encode_message(_INLINE_TYPES[json_name], inner, zeros))
            continue
        if json_name not in obj:
            if zeros and not repeated and kind in ("string", "int32", "int64", "bool") \
                    and json_name not in protobuf._KEEP_ZERO.get(name.rsplit(".", 1)[-1], ()):
                wire, payload = _enc_value(kind, "" if kind == "string" else 0)
                out += _ld(num, payload) if wire == 2 else _tag(num, 0) + payload
            elif zeros and not repeated and kind.endswith(".Time"):
                out += _ld(num, b"")  # Go writes an empty Time for a zero non-pointer Time
            continue
        value = obj[json_name]
        if kind == "map":
            for k, v in value.items():
                _w, kp = _enc_value(map_types[0], k)
                _w, vp = _enc_value(map_types[1], v)
                out += _ld(num, _ld(1, kp) + _ld(2, vp))
            continue
        for item in (value if repeated else [value]):
            wire, payload = _enc_value(kind, item)
            out += _ld(num, payload) if wire == 2 else _tag(num, 0) + payload
    return bytes(out)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _ld(1, api_version.encode()) + _ld(2, kind.encode())
    return protobuf.MAGIC + _ld(1, type_meta) + _ld(2, raw) + _ld(3, b"") + _ld(4, b"")


def roundtrip(obj: dict[str, Any], message: str) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return protobuf.decode(envelope(obj["apiVersion"], obj["kind"], encode_message(message, body)))


# --- tests ---

def test_captured_kubectl_create_job_body() -> None:
    data = base64.b64decode((WIRE / "create_job_hello.protobuf.b64").read_text())
    assert protobuf.decode(data) == HELLO_JSON


def test_protobuf_bodies_in_scenario_capture() -> None:
    path = WIRE / "scenario_requests.jsonl"
    bodies = []
    for line in path.read_text().splitlines():
        req = json.loads(line)
        if req.get("body_b64") and "protobuf" in str(req.get("headers", "")):
            bodies.append(req)
    assert bodies, "the capture holds at least kubectl create job"
    for req in bodies:
        decoded = protobuf.decode(base64.b64decode(req["body_b64"]))
        note = req.get("note", "")
        if note.startswith("protobuf decoded: "):
            assert decoded == json.loads(note[len("protobuf decoded: "):])


def test_encoder_reproduces_the_captured_job() -> None:
    assert roundtrip(HELLO_JSON, "k8s.io.api.batch.v1.Job") == HELLO_JSON


def test_cronjob_round_trip_as_kubectl_create_cronjob() -> None:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
          "spec": {"schedule": "*/1 * * * *",
                   "jobTemplate": {"metadata": {"name": "cj"}, "spec": {"template": {"metadata": {}, "spec": {
                       "containers": [{"name": "cj", "image": "busybox", "command": ["date"], "resources": {}}],
                       "restartPolicy": "OnFailure"}}}}},
          "status": {}}
    assert roundtrip(cj, "k8s.io.api.batch.v1.CronJob") == cj


def test_job_from_cronjob_keeps_pointer_zeros_annotations_and_owner() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "manual", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj",
                                             "uid": "0b2c-uid", "controller": True}],
                        "creationTimestamp": "2024-05-06T07:08:09Z",
                        "labels": {"a": "b", "c": ""}},
           "spec": {"backoffLimit": 0, "suspend": False, "parallelism": 1, "ttlSecondsAfterFinished": 0,
                    "template": {"metadata": {}, "spec": {
                        "containers": [{"name": "c", "image": "busybox",
                                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                                        "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                                            "key": "k"}}}],
                                        "ports": [{"containerPort": 8080}],
                                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"},
                                                          "periodSeconds": 3},
                                        "readinessProbe": {"tcpSocket": {"port": 8080}}}],
                        "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}],
                        "restartPolicy": "Never", "terminationGracePeriodSeconds": 0}}},
           "status": {}}
    out = roundtrip(job, "k8s.io.api.batch.v1.Job")
    assert out == job


def test_namespace_round_trip() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}}
    assert roundtrip(ns, "k8s.io.api.core.v1.Namespace") == ns


def test_delete_options_with_empty_type_meta_and_negative_ints() -> None:
    raw = encode_message("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
                         {"gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"]},
                         zeros=False)
    data = envelope("", "", raw)
    assert protobuf.decode(data, kind="DeleteOptions", api_version="v1") == {
        "apiVersion": "v1", "kind": "DeleteOptions",
        "gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"]}
    assert protobuf.decode(data)["kind"] == "DeleteOptions"
    raw = encode_message("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions", {"gracePeriodSeconds": -1}, False)
    assert protobuf.decode(envelope("batch/v1", "DeleteOptions", raw))["gracePeriodSeconds"] == -1


def test_packed_repeated_varints() -> None:
    # PodFailurePolicyOnExitCodesRequirement.values (field 3), packed.
    packed = _ld(3, _varint(1) + _varint(42))
    raw = _ld(2, b"In") + packed
    out = protobuf._message("k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement", raw)
    assert out == {"operator": "In", "values": [1, 42]}


def test_malformed_bodies_are_400() -> None:
    for data in (b"{}", protobuf.MAGIC + b"\x0a\xff", envelope("batch/v1", "Nope", b"")):
        with pytest.raises(StatusError) as err:
            protobuf.decode(data)
        assert err.value.code == 400
