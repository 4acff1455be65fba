"""``/openapi/v3`` as kube-apiserver 1.32 serves it from the shipped documents: the index
names the service-account issuer discovery documents too (``.well-known/openid-configuration``
and ``openid/v1/jwks``: kube-openapi's InstallV3 lists every go-restful web service by its
root path), each served byte for byte as upstream's ``api/openapi-spec/v3`` copy."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec

from jobplane.apiserver.http import create_app
from jobplane.apiserver.openapi_routes import load_default
from jobplane.apiserver.satokens import ServiceAccountTokens
from jobplane.apiserver.service import ApiService
from jobplane.clock import FakeClock
from jobplane.storage.memory import MemoryStore

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# sha256 of kubernetes/kubernetes api/openapi-spec/v3/<file> (see data/openapi/README.md)
UPSTREAM = {
    ".well-known/openid-configuration": ("d776f5a3b4924075c3105f6576a4167c56a9b31d94219e4eb304af17841f1c0c",
                                         "/.well-known/openid-configuration/",
                                         "getServiceAccountIssuerOpenIDConfiguration"),
    "openid/v1/jwks": ("be0369fabc2dd2e26ddde8ffcc4829f0559c4f76841d96d154f76cb3ad2e95db",
                       "/openid/v1/jwks/", "getServiceAccountIssuerOpenIDKeyset"),
}


@pytest.fixture
async def client(tmp_path) -> AsyncIterator[TestClient]:
    store = MemoryStore()
    await store.start()
    service = ApiService(store, FakeClock())
    service.tokens = ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    await service.ensure_default_namespaces()
    c = TestClient(TestServer(create_app(service, token=TOKEN, pods_dir=tmp_path, openapi=load_default())))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()
        await store.close()


async def test_index_lists_the_issuer_discovery_documents(client: TestClient) -> None:
    resp = await client.get("/openapi/v3", headers=AUTH)
    paths = (await resp.json())["paths"]
    assert {".well-known/openid-configuration", "openid/v1/jwks", "api/v1", "apis/batch/v1"} <= set(paths)
    assert list(paths) == sorted(paths)  # Go writes a map's keys in order
    for name, (digest, path, operation) in UPSTREAM.items():
        url = paths[name]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{name}?hash=")
        resp = await client.get(url, headers=AUTH)
        body = await resp.read()
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Cache-Control"] == "public, immutable"
        assert hashlib.sha256(body).hexdigest() == digest
        assert orjson.loads(body)["paths"][path]["get"]["operationId"] == operation


async def test_the_documented_endpoints_answer(client: TestClient) -> None:
    """What the documents describe is served (the trailing slash of their paths included)."""
    for name, (_, path, _) in UPSTREAM.items():
        for url in (f"/{name}", path):
            resp = await client.get(url, headers=AUTH)
            assert resp.status == 200, (url, await resp.text())
