"""The audit log (``--audit-log-path``, ``--audit-policy-file`` in upstream's Policy format):
audit.k8s.io/v1 Events as JSON lines, levels chosen by the first matching rule, and never a
Secret's contents or a token, whatever the level asks for."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time

import pytest

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/version", "/openapi*"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["secrets", "configmaps", "serviceaccounts/token"]
- level: Request
  verbs: ["create"]
  namespaces: ["audited"]
- level: None
  verbs: ["get", "list"]
  resources:
  - group: ""
    resources: ["namespaces"]
- level: Metadata
"""

SECRET = "s3cr3t-value-7f2c"


@pytest.fixture(scope="module")
def audited(module_server_factory, tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    (root / "policy.yaml").write_text(POLICY)
    log = root / "logs" / "audit.log"
    srv = module_server_factory("--no-agent", "--audit-log-path", str(log), "--audit-policy-file",
                                str(root / "policy.yaml"))
    return srv, log


def events(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def until_logged(log, pred, what: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in events(log) if pred(e)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no audit event for {what}")


def test_levels_by_policy_and_no_secret_data_at_any_level(audited):
    srv, log = audited
    srv.kubectl("create", "namespace", "audited", check=True)
    srv.kubectl("-n", "audited", "create", "secret", "generic", "db", f"--from-literal=password={SECRET}",
                check=True)
    srv.kubectl("-n", "audited", "get", "secret", "db", "-o", "yaml", check=True)
    srv.kubectl("-n", "audited", "get", "secrets", "-o", "json", check=True)
    srv.kubectl("-n", "audited", "patch", "secret", "db", "-p", json.dumps({"stringData": {"other": SECRET}}),
                check=True)
    srv.kubectl("-n", "audited", "create", "configmap", "settings", "--from-literal=mode=fast", check=True)
    srv.kubectl("-n", "audited", "create", "job", "j", "--image=busybox", "--", "true", check=True)
    token = srv.kubectl("-n", "audited", "create", "token", "default", check=True).stdout.strip()
    srv.kubectl("-n", "audited", "get", "jobs", "--as=mallory", check=False)

    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    until_logged(log, lambda e: e.get("user", {}).get("username") == "jobplane-admin"
                 and e.get("impersonatedUser", {}).get("username") == "mallory", "the impersonated request")
    text = log.read_text()
    for needle in (SECRET, base64.b64encode(SECRET.encode()).decode(), token):
        assert needle not in text
    all_events = events(log)
    assert {e["apiVersion"] for e in all_events} == {"audit.k8s.io/v1"}
    assert {e["kind"] for e in all_events} == {"Event"}
    assert {e["stage"] for e in all_events} == {"ResponseComplete"}  # RequestReceived omitted
    assert not [e for e in all_events if e["requestURI"].startswith(("/healthz", "/version", "/openapi"))]

    secrets = [e for e in all_events if e.get("objectRef", {}).get("resource") == "secrets"]
    assert {e["verb"] for e in secrets} >= {"create", "get", "list", "patch"}
    for e in secrets:  # RequestResponse asked for, Metadata given
        assert e["level"] == "Metadata" and "requestObject" not in e and "responseObject" not in e
    created = next(e for e in secrets if e["verb"] == "create")
    assert created["objectRef"] == {"resource": "secrets", "namespace": "audited", "apiGroup": "",
                                    "apiVersion": "v1"}
    assert created["user"]["username"] == "jobplane-admin" and created["responseStatus"]["code"] == 201
    assert created["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert created["auditID"] and created["requestReceivedTimestamp"] and created["sourceIPs"]

    tokens = [e for e in all_events if e.get("objectRef", {}).get("subresource") == "token"]
    assert tokens and all(e["level"] == "Metadata" and "responseObject" not in e for e in tokens)

    by_admin = [e for e in all_events if e["user"]["username"] == "jobplane-admin"]
    cm = next(e for e in by_admin if e.get("objectRef", {}).get("resource") == "configmaps" and e["verb"] == "create")
    assert cm["level"] == "RequestResponse"
    assert cm["requestObject"]["data"] == {"mode": "fast"} and cm["responseObject"]["metadata"]["uid"]

    job = next(e for e in by_admin if e.get("objectRef", {}).get("resource") == "jobs" and e["verb"] == "create")
    assert job["level"] == "Request" and job["requestObject"]["kind"] == "Job" and "responseObject" not in job

    # the controllers' own requests (in-process) are recorded under their identities
    pods = until_logged(log, lambda e: e["user"]["username"] == "system:serviceaccount:kube-system:job-controller"
                        and e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "pods",
                        "the job controller creating the Job's pod")
    assert pods[0]["objectRef"]["namespace"] == "audited" and pods[0]["responseStatus"]["code"] == 201
    assert pods[0]["requestURI"] == "/api/v1/namespaces/audited/pods"
    assert not [e for e in all_events if e.get("objectRef", {}).get("resource") == "namespaces"
                and e["verb"] in ("get", "list")]
    denied = next(e for e in all_events if e.get("impersonatedUser", {}).get("username") == "mallory")
    assert denied["level"] == "Metadata" and denied["responseStatus"]["code"] == 403
    assert denied["annotations"]["authorization.k8s.io/decision"] == "forbid"


def test_bad_policy_refuses_to_start(tmp_path):
    (tmp_path / "policy.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n")
    import sys

    out = subprocess.run([sys.executable, "-m", "jobplane", "server", "--data-dir", str(tmp_path / "d"), "--port", "0",
                          "--no-agent", "--audit-log-path", str(tmp_path / "a.log"), "--audit-policy-file",
                          str(tmp_path / "policy.yaml")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "rules[0].level must be one of None, Metadata, Request, RequestResponse" in \
        out.stderr + out.stdout
