"""The server process: version, discovery, auth, TLS and restart persistence."""

from __future__ import annotations

import json
import ssl
import stat

import aiohttp
import yaml


async def _get(url: str, ca: str | None, token: str | None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=ca) if ca else False
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def test_version_and_api_resources(jp):
    out = jp.kubectl("version", "-o", "json", check=True).stdout
    server = json.loads(out)["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")
    out = jp.kubectl("api-resources", check=True).stdout
    rows: dict[str, list[str]] = {}
    for line in out.splitlines()[1:]:  # core first; metrics.k8s.io also serves "nodes" and "pods"
        rows.setdefault(line.split()[0], line.split())
    assert "jobs" in rows and "cronjobs" in rows and "pods" in rows
    assert rows["cronjobs"][1] == "cj" and rows["pods"][1] == "po"


def test_files_are_private(jp):
    for path in (jp.kubeconfig, jp.data_dir / "pki" / "token", jp.data_dir / "pki" / "server.key",
                 jp.data_dir / "pki" / "ca.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    cfg = yaml.safe_load(jp.kubeconfig.read_text())
    assert cfg["current-context"] == "jobplane" and cfg["clusters"][0]["cluster"]["server"] == jp.url


async def test_token_required_and_tls_verifies(jp):
    ca = str(jp.ca_file())
    url = jp.url + "/apis/batch/v1/namespaces/default/jobs"
    status, body = await _get(url, ca, None)
    assert status == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    assert set(body) == {"kind", "apiVersion", "metadata", "status", "message", "reason", "code"}
    status, body = await _get(url, ca, "wrong")
    assert status == 401
    status, body = await _get(url, ca, jp.token())
    assert status == 200 and body["kind"] == "JobList"
    status, body = await _get(jp.url + "/healthz".replace("/healthz", "/version"), ca, None)
    assert status == 200 and body["minor"] == "32"
    # Without the CA, verification must fail.
    try:
        async with aiohttp.ClientSession() as session:
            await session.get(jp.url + "/version", ssl=ssl.create_default_context())
        raise AssertionError("TLS verification unexpectedly succeeded without the CA")
    except aiohttp.ClientConnectorCertificateError:
        pass


def test_restart_keeps_objects_token_and_ca(server_factory):
    srv = server_factory("--no-agent")
    srv.kubectl("create", "namespace", "keep", check=True)
    token, ca = srv.token(), srv.ca_file().read_bytes()
    assert srv.stop() == 0
    srv.start()
    assert srv.token() == token and srv.ca_file().read_bytes() == ca
    out = srv.kubectl("get", "namespace", "keep", "-o", "name", check=True).stdout
    assert out.strip() == "namespace/keep"
