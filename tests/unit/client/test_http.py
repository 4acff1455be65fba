"""HttpClient on a fake aiohttp session: URLs, bodies, headers, errors, watch and log streams."""

import orjson
import pytest
from multidict import CIMultiDict

from jobplane.api.errors import StatusError
from jobplane.client.base import JSON_PATCH
from jobplane.client.http import HttpClient, error_from_response, iter_lines, parse_warning


class FakeContent:
    def __init__(self, chunks):
        self.chunks = chunks

    async def iter_any(self):
        for c in self.chunks:
            yield c


class FakeResp:
    def __init__(self, status=200, body=b"{}", headers=None, chunks=None):
        self.status = status
        self.body = body
        self.headers = CIMultiDict(headers or [])
        self.content = FakeContent(chunks if chunks is not None else [body])

    async def read(self):
        return self.body

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class FakeSession:
    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        return self.responses.pop(0) if self.responses else FakeResp()

    async def close(self):
        pass


def client(*responses, **kw):
    s = FakeSession(*responses)
    return HttpClient("https://127.0.0.1:6443/", "tok", insecure=True, session=s, **kw), s


async def test_get_list_paths_params_and_auth():
    c, s = client(FakeResp(body=b'{"kind":"Job"}'), FakeResp(body=b'{"items":[]}'), FakeResp())
    assert (await c.get("jobs", "pi", "default"))["kind"] == "Job"
    await c.list("pods", "ns1", label_selector="a=b", limit=5, continue_="tok2")
    await c.get("nodes", "n1", "ignored-for-cluster-scope", subresource="status")
    (m1, u1, k1), (m2, u2, k2), (_, u3, _) = s.calls
    assert (m1, u1) == ("GET", "https://127.0.0.1:6443/apis/batch/v1/namespaces/default/jobs/pi")
    assert k1["headers"]["Authorization"] == "Bearer tok"
    assert u2 == "https://127.0.0.1:6443/api/v1/namespaces/ns1/pods"
    assert k2["params"] == {"labelSelector": "a=b", "limit": "5", "continue": "tok2"}
    assert u3 == "https://127.0.0.1:6443/api/v1/nodes/n1/status"


async def test_writes_send_json_bodies_and_content_types():
    c, s = client(FakeResp(), FakeResp(), FakeResp(), FakeResp(), FakeResp())
    await c.create("jobs", {"metadata": {"name": "x", "namespace": "ns"}})
    await c.update("jobs", {"metadata": {"name": "x", "namespace": "ns"}}, subresource="status")
    await c.patch("pods", "p", [{"op": "remove", "path": "/x"}], "default", patch_type=JSON_PATCH)
    await c.delete("jobs", "x", "ns", propagation_policy="Foreground", preconditions={"uid": "u"})
    await c.delete_collection("pods", "ns", label_selector="a=b", propagation_policy="Background")
    post, put, patch, delete, delcol = s.calls
    assert post[0] == "POST" and post[1].endswith("/apis/batch/v1/namespaces/ns/jobs")
    assert orjson.loads(post[2]["data"])["metadata"]["name"] == "x"
    assert put[0] == "PUT" and put[1].endswith("/namespaces/ns/jobs/x/status")
    assert patch[2]["headers"]["Content-Type"] == JSON_PATCH
    assert orjson.loads(delete[2]["data"]) == {"kind": "DeleteOptions", "apiVersion": "v1",
                                               "propagationPolicy": "Foreground", "preconditions": {"uid": "u"}}
    assert delcol[1].endswith("/api/v1/namespaces/ns/pods") and delcol[2]["params"] == {"labelSelector": "a=b"}


async def test_status_error_from_server_body():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
              "message": 'jobs.batch "pi" not found', "details": {"name": "pi", "group": "batch", "kind": "jobs"}}
    c, _ = client(FakeResp(404, orjson.dumps(status)))
    with pytest.raises(StatusError) as exc:
        await c.get("jobs", "pi", "default")
    assert exc.value.code == 404 and exc.value.reason == "NotFound"
    assert exc.value.message == 'jobs.batch "pi" not found'
    assert exc.value.details["name"] == "pi"


def test_error_without_status_body_uses_generic_message():
    err = error_from_response(500, b"plain text failure", "POST", "/apis/batch/v1/namespaces/d/jobs")
    assert err.code == 500 and err.reason == "InternalError"
    assert err.message.startswith('an error on the server ("plain text failure") has prevented')


async def test_warnings_are_reported():
    seen = []
    c, _ = client(FakeResp(headers=[("Warning", '299 - "unknown field \\"spec.x\\""')]), on_warning=seen.append)
    await c.get("jobs", "pi", "default")
    assert seen == ['unknown field "spec.x"']
    assert parse_warning("299 - plain") == "plain"


async def test_watch_parses_split_lines_and_raises_error_events():
    ev1 = orjson.dumps({"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "a"}}})
    ev2 = orjson.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                     "message": "too old resource version: 1 (5)"}})
    data = ev1 + b"\n" + ev2 + b"\n"
    c, s = client(FakeResp(chunks=[data[:7], data[7:30], data[30:]]))
    got = []
    with pytest.raises(StatusError) as exc:
        async for item in c.watch("pods", "default", resource_version="3", allow_bookmarks=True,
                                  field_selector="metadata.name=a"):
            got.append(item)
    assert got == [("ADDED", {"kind": "Pod", "metadata": {"name": "a"}})]
    assert exc.value.code == 410
    assert s.calls[0][2]["params"] == {"watch": "true", "resourceVersion": "3", "fieldSelector": "metadata.name=a",
                                       "allowWatchBookmarks": "true"}


async def test_watch_error_status_before_stream():
    c, _ = client(FakeResp(403, orjson.dumps({"kind": "Status", "code": 403, "reason": "Forbidden",
                                                "message": "no"})))
    with pytest.raises(StatusError) as exc:
        async for _ in c.watch("pods"):
            pass
    assert exc.value.code == 403


async def test_read_log_streams_chunks_with_params():
    c, s = client(FakeResp(chunks=[b"line1\n", b"line2\n"]))
    out = [chunk async for chunk in c.read_log("p", "default", container="c", follow=True, tail_lines=10,
                                              timestamps=True)]
    assert out == [b"line1\n", b"line2\n"]
    method, url, kw = s.calls[0]
    assert url.endswith("/api/v1/namespaces/default/pods/p/log")
    assert kw["params"] == {"container": "c", "follow": "true", "tailLines": "10", "timestamps": "true"}


async def test_raw_request_helper():
    c, s = client(FakeResp(body=b'{"major":"1","minor":"32"}'))
    resp = await c.request("GET", "/version", accept="application/json, */*")
    assert resp.status == 200 and resp.json()["minor"] == "32"
    assert s.calls[0][2]["headers"]["Accept"] == "application/json, */*"


async def test_iter_lines_handles_long_and_unterminated_lines():
    async def chunks():
        yield b"a" * 200_000
        yield b"\nb"

    assert [len(x) async for x in iter_lines(chunks())] == [200_000, 1]


def test_plain_http_needs_no_tls():
    c = HttpClient("http://127.0.0.1:8080", None)
    assert c._ssl is None


def test_typed_after_is_what_the_server_said_and_informers_trust_it() -> None:
    """The server's agent process is told the server's ``typed_after``: its informers skip
    re-checking objects that server wrote; any other HTTP client knows nothing."""
    from jobplane.client.informer import Informer

    assert HttpClient("https://x").typed_after() is None
    local = HttpClient("http://localhost", unix_socket="/nonexistent", typed_after=41)
    assert local.typed_after() == 41
    informer = Informer(local, "pods")
    assert informer._checked_on_write("42") and not informer._checked_on_write("41")
    assert not Informer(HttpClient("https://x"), "pods")._checked_on_write("42")
