"""Bounded parsing and the small input faults, through the real HTTP stack in memory:
YAML alias bombs, body size, nesting depth, JSON patch size, non-UTF-8 Authorization,
control characters in warnings, bad log options, watches from the future."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from jobplane.api import bodyparse
from jobplane.apiserver.http import MAX_BODY, create_app

JOBS = "/apis/batch/v1/namespaces/default/jobs"
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
BOMB = b"""apiVersion: batch/v1
kind: Job
metadata: {name: bomb}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def job(name: str = "pi") -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                           "restartPolicy": "Never"}}}}


@pytest.fixture
async def http(service, tmp_path):
    client = TestClient(TestServer(create_app(service, token="t0ken", pods_dir=tmp_path)),
                        headers={"Authorization": "Bearer t0ken"})
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_yaml_alias_bomb_is_400_and_small_aliases_still_work(http):
    resp = await http.post(JOBS, data=BOMB, headers=YAML)
    body = await resp.json()
    assert resp.status == 400
    assert body["message"] == "the object provided is unrecognized (yaml: document contains excessive aliasing)"
    ok = b"apiVersion: batch/v1\nkind: Job\nmetadata: {name: ok, labels: &l {app: x}}\nspec:\n  template:\n" \
         b"    metadata: {labels: *l}\n    spec: {restartPolicy: Never, containers: [{name: c, image: i}]}\n"
    resp = await http.post(JOBS, data=ok, headers=YAML)
    assert resp.status == 201, await resp.text()
    created = await resp.json()  # the alias is a copy: defaulting the template leaves metadata alone
    assert created["metadata"]["labels"] == {"app": "x"}
    assert created["spec"]["template"]["metadata"]["labels"]["app"] == "x"


def test_yaml_keeps_timestamps_as_strings_and_keys_as_strings():
    assert bodyparse.load_yaml(b"a: 2024-01-01T00:00:00Z\n1: x\n") == {"a": "2024-01-01T00:00:00Z", "1": "x"}


def test_alias_ratio_follows_go_yaml():
    assert bodyparse.allowed_alias_ratio(1000) == 0.99
    assert bodyparse.allowed_alias_ratio(4_000_000) == 0.10
    assert 0.10 < bodyparse.allowed_alias_ratio(2_000_000) < 0.99


async def test_bodies_over_the_limit_are_413(http):
    big = orjson.dumps(dict(job(), spec={"x": "a" * MAX_BODY}))
    resp = await http.post(JOBS, data=big, headers=JSON)
    body = await resp.json()
    assert (resp.status, body["reason"], body["message"]) == (
        413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


async def test_large_yaml_is_parsed_off_the_loop_and_decoded(http):
    body = job("large")
    body["metadata"]["annotations"] = {f"k{i}": "v" * 100 for i in range(2000)}
    import yaml

    resp = await http.post(JOBS, data=yaml.safe_dump(body), headers=YAML)
    assert resp.status == 201, await resp.text()


async def test_json_patch_operation_limit_and_patch_depth(http):
    await http.post(JOBS, data=orjson.dumps(job()), headers=JSON)
    ops = [{"op": "test", "path": "/kind", "value": "Job"}] * 10001
    resp = await http.patch(f"{JOBS}/pi", data=orjson.dumps(ops), headers={"Content-Type": "application/json-patch+json"})
    assert resp.status == 413
    assert (await resp.json())["message"] == \
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    deep: dict = {}
    for _ in range(500):
        deep = {"a": deep}
    resp = await http.patch(f"{JOBS}/pi", data=json.dumps({"metadata": {"labels": deep}}),
                            headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status == 400
    assert "exceeded max depth of 100" in (await resp.json())["message"]


async def test_deep_free_form_parts_are_400(http):
    deep: list = []
    for _ in range(300):
        deep = [deep]
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
             "spec": {"holderIdentity": "x", "deep": deep}}
    resp = await http.post("/apis/coordination.k8s.io/v1/namespaces/default/leases", data=json.dumps(lease),
                           headers=JSON)
    assert resp.status == 400
    assert "exceeded max depth of 100" in (await resp.json())["message"]


async def test_non_utf8_authorization_is_401(http):
    reader, writer = await asyncio.open_connection(http.server.host, http.server.port)
    writer.write(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x80\r\n"
                 b"Connection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_unknown_field_with_crlf_is_not_stored_and_the_answer_arrives(http):
    body = job("crlf")
    body["spec"]["bad\r\nX-Injected: 1"] = 1
    resp = await http.post(JOBS, data=orjson.dumps(body), headers=JSON)
    assert resp.status == 201
    assert "X-Injected" not in resp.headers
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.bad\\\\r\\\\nX-Injected: 1\\""'
    assert "bad" not in (await resp.json())["spec"]
    resp = await http.post(f"{JOBS}?fieldValidation=Strict", data=orjson.dumps(dict(body, metadata={"name": "s"})),
                           headers=JSON)
    assert resp.status == 400
    assert 'strict decoding error: unknown field "spec.bad\\r\\nX-Injected: 1"' in (await resp.json())["message"]


async def test_negative_tail_lines_is_422(http):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await http.post("/api/v1/namespaces/default/pods", data=orjson.dumps(pod), headers=JSON)
    resp = await http.get("/api/v1/namespaces/default/pods/p/log?tailLines=-1")
    body = await resp.json()
    assert resp.status == 422
    assert body["message"] == 'PodLogOptions "" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'


async def test_watch_from_a_future_resource_version_is_504_after_the_wait(http, clock):
    task = asyncio.ensure_future(http.get(f"{JOBS}?watch=true&resourceVersion=99999999999"))
    for _ in range(40):
        await asyncio.sleep(0.01)
        await clock.advance(0.1)
    resp = await asyncio.wait_for(task, 10)
    body = await resp.json()
    assert resp.status == 504
    assert resp.headers["Retry-After"] == "1"
    assert body["reason"] == "Timeout"
    assert body["message"].startswith("Timeout: Too large resource version: 99999999999, current: ")
    assert body["details"]["retryAfterSeconds"] == 1
    assert body["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    resp = await http.get(f"{JOBS}?watch=true&resourceVersion=abc")
    assert resp.status == 400


async def _current_rv(http) -> int:
    resp = await http.get(JOBS)
    return int((await resp.json())["metadata"]["resourceVersion"])


async def test_list_at_a_future_resource_version_waits_then_answers_504(http, clock):
    """Upstream's cacher serves a list "not older than" its resourceVersion: it waits up to
    3 s for the watch cache to get there, then answers 504 Too large resource version."""
    current = await _current_rv(http)
    t0 = clock.now()
    task = asyncio.ensure_future(http.get(f"{JOBS}?resourceVersion=99999999999"))
    for _ in range(40):
        await asyncio.sleep(0.01)
        assert not task.done() or clock.now() - t0 > 2.9  # not before the 3 s
        await clock.advance(0.1)
    resp = await asyncio.wait_for(task, 10)
    body = await resp.json()
    assert resp.status == 504
    assert resp.headers["Retry-After"] == "1"
    assert (body["reason"], body["code"]) == ("Timeout", 504)
    assert body["message"] == f"Timeout: Too large resource version: 99999999999, current: {current}"
    assert body["details"] == {"retryAfterSeconds": 1, "causes": [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]}


async def test_list_answers_once_the_store_reaches_the_resource_version(http, clock):
    target = await _current_rv(http) + 1
    task = asyncio.ensure_future(http.get(f"{JOBS}?resourceVersion={target}"))
    await asyncio.sleep(0.05)
    await clock.advance(0.1)
    assert not task.done()
    assert (await http.post(JOBS, data=orjson.dumps(job("later")), headers=JSON)).status == 201
    await clock.advance(0.1)
    resp = await asyncio.wait_for(task, 10)
    assert resp.status == 200
    body = await resp.json()
    assert [i["metadata"]["name"] for i in body["items"]] == ["later"]
    assert int(body["metadata"]["resourceVersion"]) >= target


@pytest.mark.parametrize("query", ["limit=500", "resourceVersionMatch=Exact",
                                   "limit=1&resourceVersionMatch=NotOlderThan"], ids=["paged", "exact", "paged-not-older-than"])
async def test_list_at_a_future_resource_version_from_storage_is_504_at_once(http, query):
    """What upstream hands to etcd rather than the watch cache is checked at once
    (``validateMinimumResourceVersion``): 504 without a retry delay."""
    current = await _current_rv(http)
    resp = await http.get(f"{JOBS}?resourceVersion=99999999999&{query}")  # no clock advance needed
    body = await resp.json()
    assert resp.status == 504 and "Retry-After" not in resp.headers
    assert body["message"] == f"Timeout: Too large resource version: 99999999999, current: {current}"
    assert body["details"] == {"causes": [{"reason": "ResourceVersionTooLarge",
                                           "message": "Too large resource version"}]}


async def test_list_at_a_past_or_bad_resource_version(http):
    current = await _current_rv(http)
    assert (await http.get(f"{JOBS}?resourceVersion={current}")).status == 200
    assert (await http.get(f"{JOBS}?resourceVersion=0&limit=500")).status == 200
    resp = await http.get(f"{JOBS}?resourceVersion=abc")
    assert resp.status == 400
    assert (await resp.json())["message"] == 'invalid resource version "abc"'


def test_yaml_values_json_cannot_hold_become_json_values():
    loaded = bodyparse.load_yaml(b"a: 1180591620717411303424\nb: !!binary aGk=\nc: !!set {x}\nd: &d [1]\ne: *d\n")
    assert loaded == {"a": 1.1805916207174113e+21, "b": "aGk=", "c": {"x": None}, "d": [1], "e": [1]}
    assert loaded["d"] is not loaded["e"]
