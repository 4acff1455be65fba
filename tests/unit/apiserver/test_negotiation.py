"""Accept / Content-Type handling and field validation helpers."""

from __future__ import annotations

import copy

import pytest

from jobplane.api import errors
from jobplane.api.registry import JOBS
from jobplane.apiserver import fieldvalidation, negotiation
from jobplane.apiserver.watchstream import EventEncoder, WatchOptions


def test_accept_modes():
    table = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
             "g=meta.k8s.io,application/json")
    agg = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
           "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    assert negotiation.accept_mode(table) == negotiation.MODE_TABLE
    assert negotiation.accept_mode(agg) == negotiation.MODE_AGGREGATED
    assert negotiation.accept_mode("application/json, */*") == negotiation.MODE_JSON
    assert negotiation.accept_mode("application/vnd.kubernetes.protobuf,application/json") == negotiation.MODE_JSON
    assert negotiation.accept_mode(None) == negotiation.MODE_JSON


def test_decode_bodies():
    assert negotiation.decode_body("application/json; charset=utf-8", b'{"a":1}') == {"a": 1}
    assert negotiation.decode_body("application/yaml", b"a: 1\nb: [x]\n") == {"a": 1, "b": ["x"]}
    with pytest.raises(errors.StatusError) as exc:
        negotiation.decode_body("text/html", b"<p>")
    assert exc.value.code == 415
    with pytest.raises(errors.StatusError) as exc:
        negotiation.patch_type("application/json")
    assert exc.value.code == 415
    assert negotiation.patch_type("application/merge-patch+json") == negotiation.MERGE_PATCH


def test_field_validation_modes():
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"bogusField": 1, "template": {"spec": {"containers": [{"name": "c", "foo": 2}]}}}}
    with pytest.raises(errors.StatusError) as exc:
        fieldvalidation.check_object(JOBS, copy.deepcopy(obj), fieldvalidation.STRICT)
    assert exc.value.code == 400
    assert exc.value.message == ('Job in version "v1" cannot be handled as a Job: strict decoding error: '
                                 'unknown field "spec.bogusField", unknown field "spec.template.spec.containers[0].foo"')
    warned = fieldvalidation.check_object(JOBS, obj, fieldvalidation.WARN)
    assert warned == ['unknown field "spec.bogusField"', 'unknown field "spec.template.spec.containers[0].foo"']
    assert "bogusField" not in obj["spec"]
    assert fieldvalidation.parse_mode(None) == fieldvalidation.WARN
    with pytest.raises(errors.StatusError):
        fieldvalidation.parse_mode("Loose")


def test_patch_validation_keeps_directives():
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}],
                                            "containers": [{"name": "c", "image": "x", "foo": 1}]}}}}
    warnings = fieldvalidation.check_patch(JOBS, patch, negotiation.STRATEGIC_MERGE_PATCH, fieldvalidation.WARN)
    assert warnings == ['unknown field "spec.template.spec.containers[0].foo"']
    assert patch == {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}],
                                                    "containers": [{"name": "c", "image": "x"}]}}}}


def test_warning_header_quoting():
    assert fieldvalidation.warning_header('unknown field "spec.x"') == '299 - "unknown field \\"spec.x\\""'


def test_event_encoder_bookmark_tracks_last_rv():
    enc = EventEncoder(JOBS, WatchOptions(allow_bookmarks=True), lambda: 0.0)
    assert enc.bookmark() is None
    enc.encode("ADDED", {"kind": "Job", "metadata": {"name": "a", "resourceVersion": "7"}})
    assert enc.bookmark() == (b'{"type":"BOOKMARK","object":{"kind":"Job","apiVersion":"batch/v1",'
                              b'"metadata":{"resourceVersion":"7"}}}\n')
