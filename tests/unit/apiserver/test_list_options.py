"""List and watch consistency options over the real HTTP layer: ``resourceVersionMatch`` (an
exact list reads the state as of that revision), streaming lists (``sendInitialEvents``) and
upstream's ``ValidateListOptions`` refusals (422 ``ListOptions.meta.k8s.io``)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from jobplane.apiserver.service import ApiService
from jobplane.clock import FakeClock
from jobplane.storage.memory import MemoryStore

from .test_http import AUTH, JOBS, JOBS_INFO, TABLE_ACCEPT, env, job, serve  # noqa: F401 - env: fixture

FORBIDDEN_UNLESS_RV = "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
FORBIDDEN_CONTINUE = "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided"
UNSUPPORTED_LIST = ('resourceVersionMatch: Unsupported value: "Newest": supported values: "Exact", '
                    '"NotOlderThan", ""')
EXACT_ZERO = 'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
SIE_LIST = "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
SIE_NEEDS_MATCH = "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
MATCH_NEEDS_SIE = ("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
                   "sendInitialEvents is provided")
UNSUPPORTED_WATCH = 'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"'


@pytest.mark.parametrize(("query", "causes"), [
    ("resourceVersionMatch=Exact", [FORBIDDEN_UNLESS_RV]),
    ("resourceVersionMatch=NotOlderThan&continue=abc", [FORBIDDEN_UNLESS_RV, FORBIDDEN_CONTINUE]),
    ("resourceVersion=1&resourceVersionMatch=Newest", [UNSUPPORTED_LIST]),
    ("resourceVersion=0&resourceVersionMatch=Exact", [EXACT_ZERO]),
    ("sendInitialEvents=true", [SIE_LIST]),
    ("sendInitialEvents=false&resourceVersionMatch=Exact", [FORBIDDEN_UNLESS_RV, SIE_LIST]),
    ("watch=1&sendInitialEvents=true", [SIE_NEEDS_MATCH]),
    ("watch=1&resourceVersionMatch=NotOlderThan", [MATCH_NEEDS_SIE]),
    ("watch=1&sendInitialEvents=true&resourceVersionMatch=Exact", [SIE_NEEDS_MATCH, UNSUPPORTED_WATCH]),
])
async def test_invalid_list_options_are_refused_naming_the_field(env, query, causes):  # noqa: F811
    client, service = env
    before = len(service.calls)
    resp = await client.get(f"{JOBS}?{query}", headers=AUTH)
    body = await resp.json()
    assert resp.status == 422, body
    assert (body["reason"], body["details"]["kind"], body["details"]["group"]) == ("Invalid", "ListOptions",
                                                                                  "meta.k8s.io")
    agg = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
    assert body["message"] == f'ListOptions.meta.k8s.io "" is invalid: {agg}'
    assert [f'{c["field"]}: {c["message"]}' for c in body["details"]["causes"]] == causes
    assert len(service.calls) == before  # refused before the service was asked anything


async def test_bad_boolean_and_resource_version_with_continue_are_bad_requests(env):  # noqa: F811
    client, _ = env
    resp = await client.get(f"{JOBS}?watch=1&sendInitialEvents=yes&resourceVersionMatch=NotOlderThan", headers=AUTH)
    assert resp.status == 400
    resp = await client.get(f"{JOBS}?resourceVersion=5&continue=abc", headers=AUTH)
    body = await resp.json()
    assert (resp.status, body["message"]) == (400, "specifying resource version is not allowed when using continue")


@pytest.mark.parametrize("limit", ["0", "-1", "-2988"])
async def test_a_limit_of_zero_or_below_lists_everything_in_one_page(env, limit):  # noqa: F811
    """kube-apiserver pages only when the limit is above 0 (etcd3 store GetList); a negative one
    was a 500 on the Event store and an empty page with a continue token on the others."""
    client, service = env
    for name in ("a", "b", "c"):
        await service.create(JOBS_INFO, "default", job(name, parallelism=1))
    names, meta = await _names_at(client, f"limit={limit}")
    assert names == ["a:1", "b:1", "c:1"]
    assert "continue" not in meta and "remainingItemCount" not in meta
    names, meta = await _names_at(client, f"limit={limit}&resourceVersion={meta['resourceVersion']}")
    assert len(names) == 3 and "continue" not in meta


async def _names_at(client, query: str, accept: str = "application/json") -> tuple[list[str], dict]:
    resp = await client.get(f"{JOBS}?{query}", headers={**AUTH, "Accept": accept})
    body = await resp.json()
    assert resp.status == 200, body
    if body["kind"] == "Table":
        return [r["object"]["metadata"]["name"] for r in body["rows"]], body["metadata"]
    return [f'{o["metadata"]["name"]}:{o["spec"]["parallelism"]}' for o in body["items"]], body["metadata"]


async def test_exact_list_reads_the_state_as_of_that_revision(env):  # noqa: F811
    client, service = env
    a = await service.create(JOBS_INFO, "default", job("a", parallelism=1))
    rv_a = a["metadata"]["resourceVersion"]
    await service.create(JOBS_INFO, "default", job("b", parallelism=1))
    rv_ab = str(service.store.current_revision())
    a = await service.get(JOBS_INFO, "default", "a")
    a["spec"]["parallelism"] = 2
    await service.update(JOBS_INFO, "default", "a", a)
    await service.create(JOBS_INFO, "default", job("c", parallelism=1))
    await service.delete_ex(JOBS_INFO, "default", "b", propagation_policy="Background")

    assert await _names_at(client, f"resourceVersion={rv_a}&resourceVersionMatch=Exact") == (
        ["a:1"], {"resourceVersion": rv_a})
    assert (await _names_at(client, f"resourceVersion={rv_ab}&resourceVersionMatch=Exact"))[0] == ["a:1", "b:1"]
    # NotOlderThan (and no match) serve the current state
    now = ["a:2", "c:1"]
    assert (await _names_at(client, f"resourceVersion={rv_a}&resourceVersionMatch=NotOlderThan"))[0] == now
    assert (await _names_at(client, f"resourceVersion={rv_a}"))[0] == now
    # kubectl's Table path reads the same snapshot
    assert (await _names_at(client, f"resourceVersion={rv_ab}&resourceVersionMatch=Exact", TABLE_ACCEPT))[0] == [
        "a", "b"]
    # pages of an exact list stay at that revision
    first, meta = await _names_at(client, f"resourceVersion={rv_ab}&resourceVersionMatch=Exact&limit=1")
    assert first == ["a:1"] and meta["resourceVersion"] == rv_ab
    rest, _ = await _names_at(client, f"limit=1&continue={meta['continue']}")
    assert rest == ["b:1"]
    # a revision not reached yet is refused at once, as etcd does
    resp = await client.get(f"{JOBS}?resourceVersion=999999&resourceVersionMatch=Exact", headers=AUTH)
    assert resp.status == 504


async def test_exact_list_of_a_compacted_revision_is_gone(tmp_path):
    store = MemoryStore(history=1)
    await store.start()
    service = ApiService(store, FakeClock())
    await service.ensure_default_namespaces()
    client = await serve(service, tmp_path)
    try:
        for accept in ("application/json", TABLE_ACCEPT):
            resp = await client.get(f"{JOBS}?resourceVersion=1&resourceVersionMatch=Exact",
                                    headers={**AUTH, "Accept": accept})
            body = await resp.json()
            assert (resp.status, body["reason"], body["message"]) == (
                410, "Expired", "The resourceVersion for the provided list is too old.")
    finally:
        await client.close()
        await store.close()


async def _events(resp, n: int) -> list[dict]:
    return [orjson.loads(await asyncio.wait_for(resp.content.readline(), 5)) for _ in range(n)]


async def test_streaming_list_sends_the_state_then_an_initial_events_end_bookmark(env):  # noqa: F811
    client, service = env
    await service.create(JOBS_INFO, "default", job("a"))
    await service.create(JOBS_INFO, "default", job("b"))
    rv = str(service.store.current_revision())
    resp = await client.get(f"{JOBS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                            "&allowWatchBookmarks=true", headers=AUTH)
    assert resp.status == 200
    added = await _events(resp, 3)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in added] == [
        ("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
    assert added[2]["object"] == {"kind": "Job", "apiVersion": "batch/v1", "metadata": {
        "resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}}}
    c = await service.create(JOBS_INFO, "default", job("c"))
    assert await _events(resp, 1) == [{"type": "ADDED", "object": c}]
    resp.close()


async def test_streaming_list_from_a_resource_version_and_without_bookmarks(env):  # noqa: F811
    client, service = env
    a = await service.create(JOBS_INFO, "default", job("a"))
    # a version given: the state is still sent whole (at least as new as it), no bookmark unless allowed
    resp = await client.get(f"{JOBS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                            f"&resourceVersion={a['metadata']['resourceVersion']}", headers=AUTH)
    assert await _events(resp, 1) == [{"type": "ADDED", "object": a}]
    b = await service.create(JOBS_INFO, "default", job("b"))
    assert await _events(resp, 1) == [{"type": "ADDED", "object": b}]
    resp.close()


async def test_watch_without_initial_events_starts_now(env):  # noqa: F811
    client, service = env
    await service.create(JOBS_INFO, "default", job("old"))
    resp = await client.get(f"{JOBS}?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan"
                            "&allowWatchBookmarks=true", headers=AUTH)
    assert resp.status == 200
    assert service.calls[-1][2]["send_initial_events"] is False
    new = await service.create(JOBS_INFO, "default", job("new"))
    assert await _events(resp, 1) == [{"type": "ADDED", "object": new}]
    resp.close()
