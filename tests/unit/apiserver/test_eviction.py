"""pods/eviction (policy/v1 Eviction): the service verb, the HTTP route, the in-process
client's route to it, and discovery."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from jobplane.api.errors import StatusError
from jobplane.apiserver.discovery import aggregated_api, legacy_resource_list
from jobplane.apiserver.http import create_app

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVICT = "/api/v1/namespaces/default/pods/p/eviction"
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
DISRUPTION = ("True", "EvictionByEvictionAPI", "Eviction API: evicting")


def pod(name: str = "p") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]}}


def eviction(name: str = "p", api_version: str = "policy/v1", **delete_options) -> dict:
    body = {"apiVersion": api_version, "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


def disruption(p: dict) -> tuple[str, str, str] | None:
    for c in p["status"].get("conditions") or ():
        if c["type"] == "DisruptionTarget":
            return c["status"], c["reason"], c["message"]
    return None


async def bound_pod(service, inproc, name: str = "p") -> dict:
    await inproc.create("pods", pod(name), "default")
    await service.bind("default", name, "n1")
    return await inproc.get("pods", name, "default")


async def test_evict_bound_pod_adds_condition_then_deletes_gracefully(service, inproc, clock):
    await bound_pod(service, inproc)
    assert await service.evict("default", "p", eviction()) == SUCCESS
    got = await inproc.get("pods", "p", "default")
    assert disruption(got) == DISRUPTION
    cond = [c for c in got["status"]["conditions"] if c["type"] == "DisruptionTarget"][0]
    assert cond["lastTransitionTime"]
    # graceful as any delete of a bound, running pod: default terminationGracePeriodSeconds
    assert got["metadata"]["deletionTimestamp"] and got["metadata"]["deletionGracePeriodSeconds"] == 30


async def test_evict_honours_delete_options(service, inproc):
    await bound_pod(service, inproc)
    await service.evict("default", "p", eviction(api_version="policy/v1beta1", gracePeriodSeconds=5))
    got = await inproc.get("pods", "p", "default")
    assert got["metadata"]["deletionGracePeriodSeconds"] == 5 and disruption(got) == DISRUPTION


async def test_evict_unbound_pod_is_gone_at_once(service, inproc):
    await inproc.create("pods", pod(), "default")
    assert await service.evict("default", "p", eviction()) == SUCCESS
    with pytest.raises(StatusError) as exc:
        await inproc.get("pods", "p", "default")
    assert exc.value.code == 404


async def test_evict_errors_as_upstream(service, inproc):
    with pytest.raises(StatusError) as exc:
        await service.evict("default", "p", eviction())
    assert exc.value.code == 404 and exc.value.message == 'pods "p" not found'
    await bound_pod(service, inproc)
    with pytest.raises(StatusError) as exc:
        await service.evict("default", "p", eviction("other"))
    assert exc.value.code == 400 and exc.value.message == "name in URL does not match name in Eviction object"
    with pytest.raises(StatusError) as exc:
        await service.evict("default", "p", eviction(api_version="v1"))
    assert exc.value.code == 400
    with pytest.raises(StatusError) as exc:
        await service.evict("default", "p", eviction(preconditions={"uid": "not-it"}))
    assert exc.value.code == 409 and "Precondition failed: UID in precondition: not-it" in exc.value.message
    got = await inproc.get("pods", "p", "default")
    assert disruption(got) is None and not got["metadata"].get("deletionTimestamp")


async def test_evict_resource_version_precondition_follows_the_condition_write(service, inproc):
    p = await bound_pod(service, inproc)
    rv = p["metadata"]["resourceVersion"]
    await service.evict("default", "p", eviction(preconditions={"resourceVersion": rv}))
    got = await inproc.get("pods", "p", "default")
    assert got["metadata"]["deletionTimestamp"] and disruption(got) == DISRUPTION


async def test_evict_dry_run_changes_nothing(service, inproc):
    before = await bound_pod(service, inproc)
    assert await service.evict("default", "p", eviction(), dry_run=True) == SUCCESS
    assert await service.evict("default", "p", eviction(dryRun=["All"])) == SUCCESS
    assert await inproc.get("pods", "p", "default") == before


async def test_inproc_create_eviction_subresource(service, inproc):
    await bound_pod(service, inproc)
    assert await inproc.create("pods", eviction(), "default", subresource="eviction") == SUCCESS
    assert disruption(await inproc.get("pods", "p", "default")) == DISRUPTION
    with pytest.raises(StatusError) as exc:
        await inproc.update("pods", eviction(), "default", subresource="eviction")
    assert exc.value.code == 405


async def test_http_eviction_route(service, inproc, tmp_path):
    app = create_app(service, token=TOKEN, pods_dir=tmp_path)
    http = TestClient(TestServer(app))
    await http.start_server()
    try:
        resp = await http.post(EVICT, json=eviction(), headers=AUTH)
        assert resp.status == 404
        await bound_pod(service, inproc)
        resp = await http.post(EVICT, json=eviction("other"), headers=AUTH)
        assert resp.status == 400
        resp = await http.get(EVICT, headers=AUTH)
        assert resp.status == 405
        resp = await http.post(EVICT + "?dryRun=All", json=eviction(), headers=AUTH)
        assert resp.status == 201 and disruption(await inproc.get("pods", "p", "default")) is None
        resp = await http.post(EVICT, json=eviction(gracePeriodSeconds=7), headers=AUTH)
        body = await resp.json()
        assert resp.status == 201 and body["status"] == "Success" and body["kind"] == "Status"
        got = await inproc.get("pods", "p", "default")
        assert disruption(got) == DISRUPTION and got["metadata"]["deletionGracePeriodSeconds"] == 7
    finally:
        await http.close()


def test_discovery_lists_eviction_create_in_policy_v1():
    core = aggregated_api()["items"][0]["versions"][0]["resources"]
    pods = [r for r in core if r["resource"] == "pods"][0]
    sub = [s for s in pods["subresources"] if s["subresource"] == "eviction"][0]
    assert sub == {"subresource": "eviction", "verbs": ["create"],
                   "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"}}
    legacy = [r for r in legacy_resource_list("", "v1")["resources"] if r["name"] == "pods/eviction"][0]
    assert legacy == {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
                      "version": "v1", "kind": "Eviction", "verbs": ["create"]}
    binding = [r for r in legacy_resource_list("", "v1")["resources"] if r["name"] == "pods/binding"][0]
    assert "group" not in binding and binding["kind"] == "Binding"
