"""Audit policy matching (upstream's Policy format) and the Metadata cap for credentials."""

from __future__ import annotations

import pytest

from jobplane.api.rbac import Attributes
from jobplane.apiserver.audit import parse_policy
from jobplane.apiserver.identity import authenticated

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
- level: None
  userGroups: ["system:nodes"]
  verbs: ["get"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["secrets", "pods/log", "configmaps"]
    resourceNames: ["cm1"]
  - group: "batch"
    resources: ["*"]
- level: Request
  namespaces: ["team-a"]
  omitStages: [ResponseComplete]
- level: Metadata
  nonResourceURLs: ["/metrics", "/ui/*"]
"""


def test_first_matching_rule_wins():
    p = parse_policy(POLICY)
    alice = authenticated("alice")
    node = authenticated("system:node:n", ["system:nodes"])
    get_job = Attributes("get", True, "x", "batch", "jobs", "", "j")
    assert p.level_for(authenticated("system:kube-proxy"), get_job)[0] == "None"
    assert p.level_for(node, get_job)[0] == "None"
    assert p.level_for(node, Attributes("update", True, "x", "batch", "jobs/status"))[0] == "RequestResponse"
    assert p.level_for(alice, Attributes("get", True, "x", "batch", "cronjobs", "status"))[0] == "RequestResponse"
    assert p.level_for(alice, Attributes("get", True, "x", "", "configmaps", "", "cm1"))[0] == "RequestResponse"
    assert p.level_for(alice, Attributes("get", True, "x", "", "configmaps", "", "cm2"))[0] == "None"
    level, omit = p.level_for(alice, Attributes("create", True, "team-a", "", "pods"))
    assert (level, omit) == ("Request", frozenset({"RequestReceived", "ResponseComplete"}))
    assert p.level_for(alice, Attributes("get", False, path="/ui/api/jobs"))[0] == "Metadata"
    assert p.level_for(alice, Attributes("get", False, path="/healthz"))[0] == "None"


def test_credentials_never_above_metadata():
    p = parse_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    alice = authenticated("alice")
    assert p.level_for(alice, Attributes("get", True, "x", "", "secrets", "", "s"))[0] == "Metadata"
    assert p.level_for(alice, Attributes("create", True, "x", "", "serviceaccounts", "token", "d"))[0] == "Metadata"
    assert p.level_for(alice, Attributes("create", True, "", "authentication.k8s.io", "tokenreviews"))[0] == \
        "Metadata"
    assert p.level_for(alice, Attributes("get", False, path="/ui/api/x"))[0] == "Metadata"
    assert p.level_for(alice, Attributes("get", True, "x", "", "serviceaccounts", "", "d"))[0] == "RequestResponse"


@pytest.mark.parametrize("text, message", [
    ("kind: Policy\napiVersion: v1\n", "expected kind Policy"),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n", "rules[0].level"),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Later]\n", "unknown stage"),
])
def test_bad_policies(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(text)


def test_rotation_keeps_the_newest_backups(tmp_path):
    import json
    import stat

    from jobplane.apiserver.audit import AuditLog, Policy
    from jobplane.clock import FakeClock

    class Ticking(FakeClock):
        def tick(self) -> None:
            self._now += 1

    clock = Ticking(1_800_000_000.0)
    log = AuditLog(tmp_path / "audit.log", Policy((), (), "Metadata"), clock, max_size_mb=1, max_backups=2)
    log.max_bytes = 2000  # a 1 MB file would take thousands of events
    user = authenticated("alice")
    for i in range(40):
        clock.tick()
        record = log.begin(user, Attributes("get", True, "ns", "", "pods", "", f"p{i}"), method="GET",
                           uri=f"/api/v1/namespaces/ns/pods/p{i}", source_ip="10.0.0.1", user_agent="t")
        assert record is not None
        log.finish(record, 200, decision="allow")
    log.close()
    backups = log.backups()
    assert len(backups) == 2 and all(p.name.startswith("audit-2027-") and p.suffix == ".log" for p in backups)
    for p in [*backups, tmp_path / "audit.log"]:
        assert p.stat().st_size <= 2000 and stat.S_IMODE(p.stat().st_mode) == 0o600
        for line in p.read_text().splitlines():
            assert json.loads(line)["kind"] == "Event"
    last = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert last[-1]["objectRef"]["name"] == "p39" and last[-1]["stage"] == "ResponseComplete"
