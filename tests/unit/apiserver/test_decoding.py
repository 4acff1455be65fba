"""Typed decoding through the real HTTP stack (in memory): wrong types answer 400 with the
Go decoder's text for create/update bodies (JSON, YAML), 422 for patches whose result does
not decode, and nothing is stored."""

from __future__ import annotations

import asyncio
import json
import logging

import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from jobplane.apiserver.http import create_app
from jobplane.client.informer import Informer

JOBS = "/apis/batch/v1/namespaces/default/jobs"
JSON = {"Content-Type": "application/json"}


def job(name: str = "pi", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                                           "restartPolicy": "Never"}}, **spec}}


@pytest.fixture
async def http(service):
    client = TestClient(TestServer(create_app(service, token=None)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _stored_jobs(http) -> list[str]:
    resp = await http.get(JOBS)
    return [j["metadata"]["name"] for j in (await resp.json())["items"]]


def _cannot(detail: str) -> str:
    return f'Job in version "v1" cannot be handled as a Job: {detail}'


SPEC = "Go struct field JobSpec.spec"
CONTAINER = "Go struct field Container.spec.template.spec.containers"
CASES = [
    ({"completions": "5"}, f"json: cannot unmarshal string into {SPEC}.completions of type int32"),
    ({"completions": 1.5}, f"json: cannot unmarshal number 1.5 into {SPEC}.completions of type int32"),
    ({"completions": True}, f"json: cannot unmarshal bool into {SPEC}.completions of type int32"),
    ({"completions": []}, f"json: cannot unmarshal array into {SPEC}.completions of type int32"),
    ({"parallelism": 2**70},
     f"json: cannot unmarshal number 1180591620717411303424 into {SPEC}.parallelism of type int32"),
    ({"parallelism": 2**31}, f"json: cannot unmarshal number 2147483648 into {SPEC}.parallelism of type int32"),
    ({"activeDeadlineSeconds": 2**63},
     f"json: cannot unmarshal number 9223372036854775808 into {SPEC}.activeDeadlineSeconds of type int64"),
    ({"suspend": "true"}, f"json: cannot unmarshal string into {SPEC}.suspend of type bool"),
    ({"completionMode": 1}, f"json: cannot unmarshal number into {SPEC}.completionMode of type v1.CompletionMode"),
    ({"template": "x"}, f"json: cannot unmarshal string into {SPEC}.template of type v1.PodTemplateSpec"),
]


@pytest.mark.parametrize(("spec", "detail"), CASES)
async def test_create_wrong_type_is_400_and_not_stored(http, spec, detail):
    resp = await http.post(JOBS, data=json.dumps(job(**spec)), headers=JSON)
    body = await resp.json()
    assert (resp.status, body["reason"], body["message"]) == (400, "BadRequest", _cannot(detail))
    assert await _stored_jobs(http) == []


async def test_nested_fields_name_the_innermost_struct(http):
    cases = [
        (lambda j: j["metadata"].update(annotations={"a": 5}),
         "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(command="true"),
         f"json: cannot unmarshal string into {CONTAINER}.command of type []string"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(command=["a", 1]),
         f"json: cannot unmarshal number into {CONTAINER}.command of type string"),
        (lambda j: j["spec"]["template"]["spec"].update(restartPolicy=5),
         "json: cannot unmarshal number into Go struct field PodSpec.spec.template.spec.restartPolicy "
         "of type v1.RestartPolicy"),
        (lambda j: j["spec"]["template"]["spec"]["containers"].append("x"),
         "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.containers "
         "of type v1.Container"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(resources={"limits": {"cpu": "lots"}}),
         "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(
            livenessProbe={"httpGet": {"port": True}}),
         "json: cannot unmarshal bool into Go value of type int32"),
        (lambda j: j.update(status={"startTime": "yesterday"}),
         'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'),
        (lambda j: j.update(metadata="pi"),
         "json: cannot unmarshal string into Go struct field Job.metadata of type v1.ObjectMeta"),
    ]
    for mutate, detail in cases:
        body = job()
        mutate(body)
        resp = await http.post(JOBS, data=orjson.dumps(body), headers=JSON)
        assert (resp.status, (await resp.json())["message"]) == (400, _cannot(detail))
    assert await _stored_jobs(http) == []


async def test_yaml_body_is_decoded_the_same_way(http):
    resp = await http.post(JOBS, data=yaml.safe_dump(job(parallelism="5")),
                           headers={"Content-Type": "application/yaml"})
    assert resp.status == 400
    assert (await resp.json())["message"] == _cannot(
        f"json: cannot unmarshal string into {SPEC}.parallelism of type int32")


async def test_null_list_items_become_zero_values(http):
    body = job()
    body["spec"]["template"]["spec"]["containers"][0]["args"] = [None, "x"]
    resp = await http.post(JOBS, data=orjson.dumps(body), headers=JSON)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["spec"]["template"]["spec"]["containers"][0]["args"] == ["", "x"]


async def test_update_wrong_type_is_400(http):
    created = await (await http.post(JOBS, data=orjson.dumps(job()), headers=JSON)).json()
    created["spec"]["backoffLimit"] = "6"
    resp = await http.put(f"{JOBS}/pi", data=orjson.dumps(created), headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["message"] == _cannot(
        f"json: cannot unmarshal string into {SPEC}.backoffLimit of type int32")
    created["spec"]["backoffLimit"] = 6
    resp = await http.put(f"{JOBS}/pi/status", data=orjson.dumps(dict(created, status={"active": "1"})),
                          headers=JSON)
    assert resp.status == 400
    assert "JobStatus.status.active of type int32" in (await resp.json())["message"]
    stored = await (await http.get(f"{JOBS}/pi")).json()
    assert stored["spec"]["backoffLimit"] == 6


async def test_patches_whose_result_does_not_decode_are_422(http):
    await http.post(JOBS, data=orjson.dumps(job()), headers=JSON)
    merge = await http.patch(f"{JOBS}/pi", data=b'{"spec":{"parallelism":"5"}}',
                             headers={"Content-Type": "application/merge-patch+json"})
    body = await merge.json()
    assert (merge.status, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert body["message"].endswith(f': json: cannot unmarshal string into {SPEC}.parallelism of type int32')
    assert body["details"]["causes"][0]["field"] == "patch"

    jsonp = await http.patch(f"{JOBS}/pi", data=b'[{"op":"replace","path":"/spec/parallelism","value":true}]',
                             headers={"Content-Type": "application/json-patch+json"})
    assert jsonp.status == 422
    assert (await jsonp.json())["message"].endswith(
        f"json: cannot unmarshal bool into {SPEC}.parallelism of type int32")

    smp = await http.patch(f"{JOBS}/pi", data=b'{"spec":{"parallelism":"5"}}',
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert smp.status == 422
    assert (await smp.json())["message"] == \
        ' "" is invalid: patch: Invalid value: "map[spec:map[parallelism:5]]": unrecognized type: int32'
    smp = await http.patch(f"{JOBS}/pi", data=b'{"spec":{"template":{"spec":{"containers":"x"}}}}',
                           headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert smp.status == 422
    assert (await smp.json())["message"].endswith(": cannot restore slice from string")

    stored = await (await http.get(f"{JOBS}/pi")).json()
    assert stored["spec"]["parallelism"] == 1


async def test_delete_options_with_wrong_types_are_400(http):
    await http.post(JOBS, data=orjson.dumps(job()), headers=JSON)
    resp = await http.delete(f"{JOBS}/pi", data=b'{"gracePeriodSeconds":"soon"}', headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["message"] == (
        'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: json: cannot unmarshal string '
        "into Go struct field DeleteOptions.gracePeriodSeconds of type int64")
    resp = await http.delete(f"{JOBS}/pi", data=b'{"propagationPolicy":5}', headers=JSON)
    assert resp.status == 400
    resp = await http.delete(f"{JOBS}/pi", data=b'[1]', headers=JSON)
    assert resp.status == 400
    assert await _stored_jobs(http) == ["pi"]


async def test_informer_skips_malformed_objects_from_an_older_store_with_one_warning(service, inproc, caplog):
    from jobplane.api.registry import JOBS as JOBS_INFO

    good = job("good")
    await inproc.create("jobs", good, "default")
    # What an older server stored without checking types.
    bad = job("bad", parallelism="5")
    bad["metadata"].update(namespace="default", uid="u1", creationTimestamp="2024-01-01T00:00:00Z")
    await service.store.create(JOBS_INFO.storage_key("default", "bad"), bad)
    seen: list[str] = []
    informer = Informer(inproc, "jobs")
    informer.add_handler(on_add=lambda o: seen.append(o["metadata"]["name"]))
    with caplog.at_level(logging.WARNING, logger="jobplane.client.informer"):
        await informer.start()
        informer._replace((await service.list(JOBS_INFO, None))["items"], informer.resource_version)
        await informer.stop()
    assert seen == ["good"]
    assert informer.get("default", "bad") is None
    warnings = [r for r in caplog.records if "skipping default/bad" in r.getMessage()]
    assert len(warnings) == 1
    assert "JobSpec.spec.parallelism of type int32" in warnings[0].getMessage()


async def test_informer_checks_objects_stored_before_the_service_and_trusts_its_writes(clock):
    """Objects an older server stored are checked (and skipped while malformed); a write through
    this process's service was checked on the way in, so its watch event is taken as is."""
    from jobplane.api.registry import JOBS as JOBS_INFO
    from jobplane.apiserver.service import ApiService
    from jobplane.client.inproc import InProcessClient
    from jobplane.storage.memory import MemoryStore

    store = MemoryStore()
    await store.start()
    await store.create("namespaces//default", {"metadata": {"name": "default"}})
    bad = job("bad", parallelism="5")
    bad["metadata"].update(namespace="default", uid="u1", creationTimestamp="2024-01-01T00:00:00Z")
    await store.create(JOBS_INFO.storage_key("default", "bad"), bad)
    service = ApiService(store, clock)
    assert service.typed_after == store.current_revision()
    client = InProcessClient(service)
    informer = Informer(client, "jobs")
    await informer.start()
    try:
        assert informer.get("default", "bad") is None and "default/bad" in informer.malformed
        checked: list[str] = []
        check = informer._checker
        informer._checker = lambda obj: (checked.append(obj["metadata"]["name"]), check(obj))
        await client.create("jobs", job("good"), "default")
        for _ in range(100):
            if informer.get("default", "good") is not None:
                break
            await asyncio.sleep(0.01)
        assert informer.get("default", "good") is not None
        assert checked == []  # checked by the service when it was created
    finally:
        await informer.stop()
        await store.close()
