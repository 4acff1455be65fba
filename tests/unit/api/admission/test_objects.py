"""The kinds around a Job through the real service: defaults, validation messages,
immutability, cluster-IP allocation and release, default StorageClass, Table rows."""

from __future__ import annotations

import pytest

from jobplane.api import errors, printers
from jobplane.api.registry import (
    CONFIGMAPS,
    ENDPOINTSLICES,
    PERSISTENTVOLUMECLAIMS,
    SECRETS,
    SERVICES,
    STORAGECLASSES,
)
from jobplane.apiserver.allocation import ClusterIPAllocator

MERGE = "application/merge-patch+json"


async def refused(coro) -> str:
    with pytest.raises(errors.StatusError) as info:
        await coro
    return info.value.message


async def test_secrets_fold_string_data_and_check_types(service) -> None:
    s = await service.create(SECRETS, "default", {"metadata": {"name": "s"}, "data": {"a": "eA=="},
                                                  "stringData": {"a": "y", "b": "z"}})
    assert s["type"] == "Opaque" and s["data"] == {"a": "eQ==", "b": "eg=="} and "stringData" not in s
    assert await refused(service.create(SECRETS, "default", {
        "metadata": {"name": "b"}, "type": "kubernetes.io/basic-auth"})) == \
        'Secret "b" is invalid: [data[username]: Required value, data[password]: Required value]'
    assert "metadata.annotations[kubernetes.io/service-account.name]: Required value" in await refused(
        service.create(SECRETS, "default", {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"}))
    assert "illegal base64 data" in await refused(
        service.create(SECRETS, "default", {"metadata": {"name": "x"}, "data": {"k": "not base64!"}}))
    assert await refused(service.patch(SECRETS, "default", "s", {"type": "Other"}, MERGE)) == \
        'Secret "s" is invalid: type: Invalid value: "Other": field is immutable'


async def test_immutable_configmap_refuses_changes_but_not_metadata(service) -> None:
    await service.create(CONFIGMAPS, "default", {"metadata": {"name": "c"}, "data": {"k": "v"}, "immutable": True})
    assert await refused(service.patch(CONFIGMAPS, "default", "c", {"immutable": False}, MERGE)) == \
        'ConfigMap "c" is invalid: immutable: Forbidden: field is immutable when `immutable` is set'
    labelled = await service.patch(CONFIGMAPS, "default", "c", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert labelled["metadata"]["labels"] == {"a": "b"}
    assert 'binaryData[k]: Invalid value: "k": duplicate of key present in data' in await refused(
        service.create(CONFIGMAPS, "default", {"metadata": {"name": "d"}, "data": {"k": "v"},
                                               "binaryData": {"k": "eA=="}}))


async def test_cluster_ips_allocated_released_and_checked(service) -> None:
    svc = await service.create(SERVICES, "default", {"metadata": {"name": "a"},
                                                     "spec": {"ports": [{"port": 80}], "selector": {"x": "y"}}})
    ip = svc["spec"]["clusterIP"]
    assert svc["spec"]["clusterIPs"] == [ip] and svc["spec"]["ports"][0]["targetPort"] == 80
    assert svc["status"] == {"loadBalancer": {}} and svc["spec"]["ipFamilies"] == ["IPv4"]
    assert "provided IP is already allocated" in await refused(service.create(
        SERVICES, "default", {"metadata": {"name": "b"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}))
    assert 'spec.ports[1].name: Required value' in await refused(service.create(
        SERVICES, "default", {"metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}}))
    assert "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in await refused(
        service.create(SERVICES, "default", {"metadata": {"name": "c"}, "spec": {"ports": [{"port": 0}]}}))
    await service.delete(SERVICES, "default", "a")
    again = await service.create(SERVICES, "default", {"metadata": {"name": "b"},
                                                       "spec": {"clusterIP": ip, "ports": [{"port": 80}]}})
    assert again["spec"]["clusterIP"] == ip


async def test_small_range_fills_up(service) -> None:
    alloc = ClusterIPAllocator(service.store, "10.0.0.0/29")  # 8 addresses: .2-.6 for services
    got = {await alloc.allocate("default", f"s{i}", None) for i in range(5)}
    assert got == {f"10.0.0.{i}" for i in range(2, 7)}
    with pytest.raises(errors.StatusError) as info:
        await alloc.allocate("default", "s6", None)
    assert "range is full" in info.value.message


async def test_claims_get_the_default_class_and_print_as_upstream(service) -> None:
    await service.ensure_default_storage_class()
    pvc = await service.create(PERSISTENTVOLUMECLAIMS, "default", {"metadata": {"name": "d"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert pvc["spec"]["storageClassName"] == "local-path" and pvc["status"] == {"phase": "Pending"}
    none = await service.create(PERSISTENTVOLUMECLAIMS, "default", {"metadata": {"name": "e"}, "spec": {
        "storageClassName": "", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert none["spec"]["storageClassName"] == ""
    classes = (await service.list(STORAGECLASSES, None))["items"]
    row = printers.to_table(STORAGECLASSES, classes, now=0)["rows"][0]["cells"]
    assert row[:5] == ["local-path (default)", "jobplane.io/local-path", "Delete", "WaitForFirstConsumer", False]
    assert 'updates to provisioner are forbidden.' in await refused(
        service.patch(STORAGECLASSES, None, "local-path", {"provisioner": "x.io/y"}, MERGE))


async def test_endpointslice_validation_and_row(service) -> None:
    eps = await service.create(ENDPOINTSLICES, "default", {
        "metadata": {"name": "s"}, "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.1.0.{i}"]} for i in range(5)], "ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]
    row = printers.to_table(ENDPOINTSLICES, [eps], now=0)["rows"][0]["cells"]
    assert row[1:4] == ["IPv4", "80", "10.1.0.0,10.1.0.1,10.1.0.2 + 2 more..."]
    assert 'endpoints[0].addresses[0]: Invalid value: "x": must be a valid IPv4 address' in await refused(
        service.create(ENDPOINTSLICES, "default", {"metadata": {"name": "t"}, "addressType": "IPv4",
                                                   "endpoints": [{"addresses": ["x"]}]}))
    assert "addressType: Invalid value" in await refused(
        service.patch(ENDPOINTSLICES, "default", "s", {"addressType": "IPv6"}, MERGE))


async def test_runtimeclasses_validate_and_pods_take_their_scheduling(service) -> None:
    from jobplane.api.registry import PODS, RUNTIMECLASSES

    assert "handler: Invalid value" in await refused(service.create(RUNTIMECLASSES, None, {
        "metadata": {"name": "bad"}, "handler": "Not_A_Label"}))
    await service.create(RUNTIMECLASSES, None, {
        "metadata": {"name": "host"}, "handler": "host", "overhead": {"podFixed": {"cpu": "10m"}},
        "scheduling": {"nodeSelector": {"kind": "host"}, "tolerations": [{"key": "k", "operator": "Exists"}]}})
    assert await refused(service.patch(RUNTIMECLASSES, None, "host", {"handler": "other"}, MERGE)) == \
        'RuntimeClass.node.k8s.io "host" is invalid: handler: Invalid value: "other": field is immutable'
    container = {"name": "c", "image": "busybox:1"}
    pod = await service.create(PODS, "default", {"metadata": {"name": "p"}, "spec": {
        "runtimeClassName": "host", "containers": [container]}})
    assert pod["spec"]["overhead"] == {"cpu": "10m"} and pod["spec"]["nodeSelector"] == {"kind": "host"}
    assert {"key": "k", "operator": "Exists"} in pod["spec"]["tolerations"]
    assert await refused(service.create(PODS, "default", {"metadata": {"name": "q"}, "spec": {
        "runtimeClassName": "nope", "containers": [container]}})) == \
        'pods "q" is forbidden: pod rejected: RuntimeClass "nope" not found'
    assert "conflict: runtimeClass.scheduling.nodeSelector[kind] = host" in await refused(service.create(
        PODS, "default", {"metadata": {"name": "r"}, "spec": {"runtimeClassName": "host",
                                                              "nodeSelector": {"kind": "gpu"},
                                                              "containers": [container]}}))


async def test_a_repeated_error_is_said_once_in_the_message_and_kept_in_the_causes(service) -> None:
    """apimachinery's NewInvalid: ErrorList.ToAggregate drops a repeated message, the causes
    keep every error (two labels with the same bad value: one line, two causes)."""
    bad = "-x-"
    with pytest.raises(errors.StatusError) as info:
        await service.create(CONFIGMAPS, "default", {"metadata": {"name": "cm", "labels": {"a": bad, "b": bad}}})
    status = info.value.to_status()
    line = f'metadata.labels: Invalid value: "{bad}": a valid label must be an empty string'
    assert status["message"].startswith(f'ConfigMap "cm" is invalid: {line}')  # one, so no brackets
    assert status["message"].count(line) == 1
    causes = status["details"]["causes"]
    assert [(c["field"], c["reason"]) for c in causes] == [("metadata.labels", "FieldValueInvalid")] * 2
