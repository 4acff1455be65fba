"""HTTP layer against the real ApiService over a memory store: routing, auth, negotiation,
verbs, errors, watch. ``RecordingService`` also notes what each verb was asked."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from jobplane.api import errors, registry
from jobplane.apiserver.http import HANDLER_KEY, RouteTable, create_app
from jobplane.apiserver.openapi_routes import OpenApiV3
from jobplane.apiserver.service import ApiService
from jobplane.clock import FakeClock
from jobplane.storage.memory import MemoryStore

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                "g=meta.k8s.io,application/json")
AGG_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;"
              "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
JOBS = "/apis/batch/v1/namespaces/default/jobs"
JOBS_INFO = registry.JOBS


def job(name: str = "pi", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                           "restartPolicy": "Never"}}, **spec}}


class RecordingService(ApiService):
    """The real service; each verb the HTTP layer calls is noted as (verb, args, kwargs)."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store, FakeClock())
        self.calls: list[tuple[str, tuple, dict]] = []

    async def create(self, info, namespace, body, *, dry_run=False, field_manager=None):
        self.calls.append(("create", (info.plural, namespace), {"dry_run": dry_run, "body": body,
                                                                "field_manager": field_manager}))
        return await super().create(info, namespace, body, dry_run=dry_run, field_manager=field_manager)

    async def list(self, info, namespace, *, label_selector=None, field_selector=None, limit=None,
                   continue_=None, at_revision=None):
        self.calls.append(("list", (info.plural, namespace), {"label_selector": label_selector,
                                                              "field_selector": field_selector, "limit": limit,
                                                              "at_revision": at_revision}))
        return await super().list(info, namespace, label_selector=label_selector, field_selector=field_selector,
                                  limit=limit, continue_=continue_, at_revision=at_revision)

    async def list_lazily(self, info, namespace, *, label_selector=None, field_selector=None, at_revision=None):
        self.calls.append(("list_lazily", (info.plural, namespace), {"label_selector": label_selector,
                                                                     "field_selector": field_selector,
                                                                     "at_revision": at_revision}))
        return await super().list_lazily(info, namespace, label_selector=label_selector,
                                         field_selector=field_selector, at_revision=at_revision)

    def watch(self, info, namespace, *, resource_version=None, label_selector=None, field_selector=None,
              send_initial_events=None, initial_events_bookmark=False):
        self.calls.append(("watch", (info.plural, namespace), {"resource_version": resource_version,
                                                               "field_selector": field_selector,
                                                               "send_initial_events": send_initial_events}))
        return super().watch(info, namespace, resource_version=resource_version, label_selector=label_selector,
                             field_selector=field_selector, send_initial_events=send_initial_events,
                             initial_events_bookmark=initial_events_bookmark)

    async def update(self, info, namespace, name, body, subresource=None, *, dry_run=False, field_manager=None):
        self.calls.append(("update", (info.plural, namespace, name, subresource), {"body": body}))
        return await super().update(info, namespace, name, body, subresource, dry_run=dry_run,
                                    field_manager=field_manager)

    async def delete_ex(self, info, namespace, name, *, propagation_policy=None, grace_period_seconds=None,
                        preconditions=None, dry_run=False):
        self.calls.append(("delete", (info.plural, namespace, name),
                           {"propagation_policy": propagation_policy, "grace_period_seconds": grace_period_seconds,
                            "dry_run": dry_run}))
        return await super().delete_ex(info, namespace, name, propagation_policy=propagation_policy,
                                       grace_period_seconds=grace_period_seconds, preconditions=preconditions,
                                       dry_run=dry_run)


async def serve(service: ApiService, pods_dir) -> TestClient:
    openapi = OpenApiV3({"api/v1": b'{"a":1}', "apis/batch/v1": b'{"b":2}'})
    client = TestClient(TestServer(create_app(service, token=TOKEN, pods_dir=pods_dir, openapi=openapi)))
    await client.start_server()
    return client


@pytest.fixture
async def env(tmp_path):
    store = MemoryStore()
    await store.start()
    service = RecordingService(store)
    await service.ensure_default_namespaces()
    client = await serve(service, tmp_path)
    try:
        yield client, service
    finally:
        await client.close()
        await store.close()


def test_route_parsing():
    rt = RouteTable()
    r = rt.parse("apis/batch/v1/namespaces/default/jobs/pi/status".split("/"))
    assert (r.info.plural, r.namespace, r.name, r.subresource) == ("jobs", "default", "pi", "status")
    r = rt.parse("api/v1/pods".split("/"))
    assert (r.info.plural, r.namespace, r.name) == ("pods", None, None)
    r = rt.parse("api/v1/namespaces/foo".split("/"))
    assert (r.info.plural, r.name) == ("namespaces", "foo")
    r = rt.parse("api/v1/namespaces/foo/status".split("/"))
    assert (r.info.plural, r.name, r.subresource) == ("namespaces", "foo", "status")
    r = rt.parse("api/v1/watch/namespaces/default/pods".split("/"))
    assert r.watch_prefix and r.info.plural == "pods" and r.namespace == "default"
    assert rt.parse("api/v1/namespaces/default/pods/x/bogus".split("/")) is None
    assert rt.parse("apis/batch/v1/jobs/pi".split("/")) is None  # namespaced object needs a namespace
    assert rt.parse("apis/nope/v1/things".split("/")) is None


async def test_public_endpoints_and_auth(env):
    client, _ = env
    resp = await client.get("/version")
    assert resp.status == 200
    body = await resp.json()
    assert (body["major"], body["minor"]) == ("1", "32")
    assert resp.headers["Cache-Control"] == "no-cache, private"
    for path in ("/healthz", "/livez", "/readyz"):
        resp = await client.get(path)
        assert (resp.status, await resp.text()) == (200, "ok")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = await client.get(JOBS, headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_unknown_path_is_404_status(env):
    client, _ = env
    for path in ("/nope", "/apis/batch/v1/namespaces/default/widgets", "/openapi/v4",
                 "/api/v1/namespaces/default/pods/x/bogus"):
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 404
        body = await resp.json()
        assert body["message"] == "the server could not find the requested resource"
        assert body["kind"] == "Status"
        # kubectl debug dereferences details of a 404 (a missing one made it panic)
        assert body["details"] == {}


async def test_openapi_unserved_group_version_and_v2(env):
    """kube-openapi answers an unknown group-version with an empty 200; /openapi/v2 is a
    definition-free swagger document (protobuf for kubectl), so kubectl's client-side
    validation skips a kind nobody serves and reports ``no matches for kind``."""
    client, _ = env
    resp = await client.get("/openapi/v3/apis/batch/v1beta1", headers=AUTH)
    assert (resp.status, await resp.read(), resp.headers["Vary"]) == (200, b"", "Accept")
    resp = await client.get("/openapi/v2", headers={
        **AUTH, "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert resp.status == 200
    assert await resp.read() == b"\n\x032.0\x12\x15\n\nKubernetes\x12\x07v1.32.0"
    resp = await client.get("/openapi/v2", headers=AUTH)
    assert (await resp.json())["swagger"] == "2.0"


async def test_error_statuses_carry_details(env):
    client, _ = env
    resp = await client.delete("/api/v1/namespaces/default/events/x/bogus", headers=AUTH)
    assert (await resp.json())["details"] == {}
    assert errors.method_not_supported("pods", "", "get").to_status()["details"] == {"group": "", "kind": "pods"}
    assert errors.internal_error("boom").to_status()["details"] == {"causes": [{"message": "boom"}]}


async def test_discovery_negotiation(env):
    client, _ = env
    resp = await client.get("/apis", headers={**AUTH, "Accept": AGG_ACCEPT})
    assert resp.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    body = await resp.json()
    batch = next(i for i in body["items"] if i["metadata"]["name"] == "batch")
    res = {r["resource"]: r for r in batch["versions"][0]["resources"]}
    assert res["cronjobs"]["shortNames"] == ["cj"] and res["jobs"]["responseKind"]["kind"] == "Job"
    resp = await client.get("/apis", headers={**AUTH, "Accept": "application/json"})
    assert resp.headers["Content-Type"] == "application/json"
    assert (await resp.json())["kind"] == "APIGroupList"
    resp = await client.get("/api/v1", headers=AUTH)
    names = {r["name"] for r in (await resp.json())["resources"]}
    assert {"pods", "pods/log", "pods/status", "namespaces", "events"} <= names


async def test_discovery_matches_captured_shapes(env):
    client, _ = env
    with open("/work/shared/kubectl-wire/aggregated_apis.json") as fh:
        captured = json.load(fh)
    resp = await client.get("/apis", headers={**AUTH, "Accept": AGG_ACCEPT})
    ours = await resp.json()
    batch = next(i for i in ours["items"] if i["metadata"]["name"] == "batch")
    assert batch == captured["items"][0]
    with open("/work/shared/kubectl-wire/legacy_apis_batch_v1.json") as fh:
        legacy = json.load(fh)
    resp = await client.get("/apis/batch/v1", headers=AUTH)
    strip = [{k: v for k, v in r.items() if k != "storageVersionHash"} for r in legacy["resources"]]
    assert (await resp.json())["resources"] == strip


async def test_openapi_index_and_hashed_docs(env):
    client, _ = env
    resp = await client.get("/openapi/v3?timeout=32s", headers=AUTH)
    index = await resp.json()
    url = index["paths"]["apis/batch/v1"]["serverRelativeURL"]
    assert "?hash=" in url
    resp = await client.get(url + "&timeout=32s", headers=AUTH)
    assert await resp.read() == b'{"b":2}'
    assert resp.headers["Cache-Control"] == "public, immutable"
    resp = await client.get("/openapi/v3/apis/batch/v1", headers=AUTH)
    assert resp.headers["Cache-Control"] == "no-cache, private"


async def test_create_get_list_table(env, monkeypatch):
    client, service = env
    labelled = job()
    labelled["metadata"]["labels"] = {"a": "b"}
    resp = await client.post(JOBS + "?fieldValidation=Strict", data=orjson.dumps(labelled),
                             headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["metadata"]["namespace"] == "default"
    resp = await client.post(JOBS, data=orjson.dumps(job("unlabelled")),
                             headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    resp = await client.get(JOBS + "/pi", headers=AUTH)
    assert (await resp.json())["metadata"]["name"] == "pi"
    resp = await client.get(JOBS + "?limit=500&labelSelector=a%3Db", headers=AUTH)
    assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["pi"]
    assert service.calls[-1][2]["label_selector"] == "a=b" and service.calls[-1][2]["limit"] == 500

    from jobplane.api import printers
    from jobplane.apiserver import http

    seen = {}
    real_rows = printers.table_rows

    def spy_rows(info, objects, **kw):
        objects = list(objects)
        seen.update(kind=info.kind, names=[o["metadata"]["name"] for o in objects], **kw)
        return real_rows(info, objects, **kw)

    monkeypatch.setattr("jobplane.api.printers.table_rows", spy_rows)
    monkeypatch.setattr(http, "TABLE_CHUNK", 100)  # a write every row or so
    resp = await client.get(JOBS + "?limit=500", headers={**AUTH, "Accept": TABLE_ACCEPT})
    table = await resp.json()
    # kubectl's table pages come back as one: the service is asked for everything, one
    # object decoded at a time, and the rows are written as they are made
    assert resp.headers.get("Transfer-Encoding") == "chunked" and service.calls[-1][0] == "list_lazily"
    assert seen["kind"] == "Job" and seen["names"] == ["pi", "unlabelled"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": str(service.store.current_revision())}
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Status"]
    assert [r["object"]["metadata"]["name"] for r in table["rows"]] == ["pi", "unlabelled"]
    assert {r["object"]["kind"] for r in table["rows"]} == {"PartialObjectMetadata"}
    assert all(len(r["cells"]) == len(table["columnDefinitions"]) for r in table["rows"])
    resp = await client.get(JOBS + "?labelSelector=a%3Db&includeObject=None", headers={**AUTH, "Accept": TABLE_ACCEPT})
    table = await resp.json()
    assert seen["names"] == ["pi"] and service.calls[-1][2]["label_selector"] == "a=b"
    assert len(table["rows"]) == 1 and "object" not in table["rows"][0]


async def test_create_errors(env):
    client, _ = env
    h = {**AUTH, "Content-Type": "application/json"}
    bogus = job("b")
    bogus["spec"]["bogusField"] = 1
    resp = await client.post(JOBS + "?fieldValidation=Strict", data=orjson.dumps(bogus), headers=h)
    assert resp.status == 400
    assert (await resp.json())["message"] == ('Job in version "v1" cannot be handled as a Job: strict decoding '
                                              'error: unknown field "spec.bogusField"')
    resp = await client.post(JOBS + "?fieldValidation=Warn", data=orjson.dumps(bogus), headers=h)
    assert resp.status == 201
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.bogusField\\""'
    assert "bogusField" not in (await resp.json())["spec"]
    resp = await client.post(JOBS, data=orjson.dumps(job("b")), headers=h)
    assert resp.status == 409 and (await resp.json())["reason"] == "AlreadyExists"
    resp = await client.post(JOBS, data=b"{not json", headers=h)
    assert resp.status == 400
    resp = await client.post(JOBS, data=b"x", headers={**AUTH, "Content-Type": "text/plain"})
    assert resp.status == 415
    resp = await client.get(JOBS + "/nope", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["message"] == 'jobs.batch "nope" not found'


async def test_yaml_body_and_dry_run(env):
    client, service = env
    text = ("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: y\nspec:\n  template:\n    spec:\n"
            "      restartPolicy: Never\n      containers:\n      - {name: c, image: busybox}\n")
    resp = await client.post(JOBS + "?dryRun=All", data=text,
                             headers={**AUTH, "Content-Type": "application/yaml"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["metadata"]["name"] == "y"
    assert service.calls[-1][2]["dry_run"] is True
    assert (await client.get(JOBS + "/y", headers=AUTH)).status == 404  # nothing stored


async def test_update_patch_delete(env):
    client, service = env
    h = {**AUTH, "Content-Type": "application/json"}
    await client.post(JOBS, data=orjson.dumps(job()), headers=h)
    current = await (await client.get(JOBS + "/pi", headers=AUTH)).json()
    stale = dict(current, metadata=dict(current["metadata"], resourceVersion="1"))
    resp = await client.put(JOBS + "/pi", data=orjson.dumps(stale), headers=h)
    assert resp.status == 409 and (await resp.json())["reason"] == "Conflict"
    resp = await client.put(JOBS + "/other", data=orjson.dumps(current), headers=h)
    assert resp.status == 400
    resp = await client.put(JOBS + "/pi/status", data=orjson.dumps(current), headers=h)
    assert resp.status == 200 and service.calls[-1][1][3] == "status"

    resp = await client.patch(JOBS + "/pi", data=b'{"spec":{"backoffLimit":5}}', headers=h)
    assert resp.status == 415
    resp = await client.patch(JOBS + "/pi?fieldValidation=Strict",
                              data=b'{"spec":{"$setElementOrder/x":[],"backoffLimit":5}}',
                              headers={**AUTH, "Content-Type": "application/strategic-merge-patch+json"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["spec"]["backoffLimit"] == 5
    resp = await client.patch(JOBS + "/pi?fieldValidation=Strict", data=b'{"spec":{"nope":1}}',
                              headers={**AUTH, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 400 and 'unknown field "spec.nope"' in (await resp.json())["message"]

    resp = await client.delete(JOBS + "/pi", data=b'{"propagationPolicy":"Foreground"}', headers=h)
    assert resp.status == 200
    assert service.calls[-1][2]["propagation_policy"] == "Foreground"
    resp = await client.delete(JOBS + "/pi?propagationPolicy=Foreground", data=b'{"orphanDependents":false}',
                               headers=h)
    assert resp.status == 202
    resp = await client.delete(JOBS + "/pi?gracePeriodSeconds=0", headers=AUTH)
    assert resp.status == 200 and service.calls[-1][2]["grace_period_seconds"] == 0
    # the foregroundDeletion finalizer holds it; without the garbage collector, drop it by hand
    resp = await client.patch(JOBS + "/pi", data=b'{"metadata":{"finalizers":null}}',
                              headers={**AUTH, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 200, await resp.text()
    resp = await client.delete(JOBS + "/pi", headers=AUTH)
    assert resp.status == 404
    resp = await client.delete(JOBS, data=b'{"propagationPolicy":"Sideways"}', headers=h)
    assert resp.status == 422


async def test_watch_stream(env):
    client, service = env
    rv = str(service.store.current_revision())
    resp = await client.get(JOBS + f"?watch=true&resourceVersion={rv}", headers=AUTH)
    assert resp.status == 200
    assert service.calls[-1][0] == "watch" and service.calls[-1][2]["resource_version"] == rv
    obj = await service.create(JOBS_INFO, "default", job("a"))
    line = await asyncio.wait_for(resp.content.readline(), 5)
    assert orjson.loads(line) == {"type": "ADDED", "object": obj}
    client.server.app[HANDLER_KEY].close_streams()  # what server shutdown does
    assert await asyncio.wait_for(resp.content.read(), 5) == b""


async def test_watch_single_object_and_timeout(env):
    client, service = env
    resp = await client.get("/apis/batch/v1/watch/namespaces/default/jobs/pi?timeoutSeconds=1",
                            headers=AUTH)
    assert await asyncio.wait_for(resp.content.read(), 5) == b""
    assert service.calls[-1][2]["field_selector"] == "metadata.name=pi"


async def test_watch_error_event(tmp_path):
    store = MemoryStore(history=1)  # the four default namespaces leave revisions 1-3 compacted
    await store.start()
    service = ApiService(store, FakeClock())
    await service.ensure_default_namespaces()
    client = await serve(service, tmp_path)
    try:
        resp = await client.get(JOBS + "?watch=1&resourceVersion=1", headers=AUTH)
        events = [orjson.loads(x) for x in (await asyncio.wait_for(resp.content.read(), 5)).splitlines()]
    finally:
        await client.close()
        await store.close()
    assert events == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 1 (4)", "reason": "Expired", "code": 410}}]
