"""The deletion rules as pure decisions (``apiserver.deletion``), table-style. Pod grace
cases follow upstream's ``TestCheckGracefulDelete`` (pkg/registry/core/pod/strategy_test.go)."""

from __future__ import annotations

import pytest

from jobplane.api import errors
from jobplane.api.registry import CONFIGMAPS, JOBS, NAMESPACES, PODS
from jobplane.apiserver import deletion

NOW = 1_700_000_000.0


def pod(phase: str | None = None, node: str | None = "n1", grace: int | None = 30, **md) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": "p", "namespace": "default", **md}, "spec": spec,
            "status": {"phase": phase} if phase else {}}


@pytest.mark.parametrize(("obj", "option", "want"), [
    pytest.param(pod("Pending"), None, 30, id="pending-with-node-name"),
    pytest.param(pod("Pending", node=None), None, 0, id="pending-without-node-name"),
    pytest.param(pod("Failed"), None, 0, id="failed"),
    pytest.param(pod("Succeeded"), None, 0, id="succeeded"),
    pytest.param(pod("Running"), None, 30, id="running"),
    pytest.param(pod(None), None, 30, id="no-phase-bound"),
    pytest.param(pod("Running", grace=None), None, 30, id="no-termination-grace-defaults-to-30"),
    pytest.param(pod("Running", grace=120), 5, 5, id="option-wins-over-spec"),
    pytest.param(pod("Running", deletionTimestamp="t", deletionGracePeriodSeconds=10), 20, 10,
                 id="running-grace-never-lengthened"),
    pytest.param(pod("Running", deletionTimestamp="t", deletionGracePeriodSeconds=10), 3, 3,
                 id="running-grace-shortened"),
])
def test_pod_grace(obj, option, want):
    assert deletion.pod_grace(obj, option) == want


def job(**md) -> dict:
    return {"metadata": {"name": "j", "namespace": "default", **md}, "spec": {}}


@pytest.mark.parametrize(("info", "obj", "policy", "finalizers"), [
    pytest.param(JOBS, job(), None, ["orphan"], id="job-default-orphans"),
    pytest.param(JOBS, job(), "Background", None, id="job-background"),
    pytest.param(JOBS, job(), "Foreground", ["foregroundDeletion"], id="job-foreground"),
    pytest.param(CONFIGMAPS, job(), None, None, id="other-kinds-default-background"),
    pytest.param(JOBS, job(deletionTimestamp="t", finalizers=["orphan"]), "Background", None,
                 id="explicit-policy-drops-orphan"),
    pytest.param(JOBS, job(deletionTimestamp="t", finalizers=["x"]), "Foreground", ["x"],
                 id="foreground-only-on-first-delete"),
    pytest.param(JOBS, job(finalizers=["x"]), "Orphan", ["x", "orphan"], id="orphan-keeps-others"),
])
def test_finalizers_for_policy(info, obj, policy, finalizers):
    new = deletion.marked_for_deletion(info, obj, propagation_policy=policy, grace_period_seconds=None, now=NOW)
    assert new["metadata"].get("finalizers") == finalizers
    assert new["metadata"]["deletionTimestamp"] == (obj["metadata"].get("deletionTimestamp")
                                                   or "2023-11-14T22:13:20Z")
    assert "deletionTimestamp" not in obj["metadata"] or obj["metadata"]["deletionTimestamp"] == "t"  # not mutated


@pytest.mark.parametrize(("obj", "grace", "timestamp", "period"), [
    pytest.param(pod("Running"), None, "2023-11-14T22:13:50Z", 30, id="bound-running-gets-grace"),
    pytest.param(pod("Running"), 0, "2023-11-14T22:13:20Z", 0, id="grace-zero-now"),
    pytest.param(pod("Running", deletionTimestamp="2023-11-14T22:13:50Z", deletionGracePeriodSeconds=30), 5,
                 "2023-11-14T22:13:25Z", 5, id="shorter-grace-moves-timestamp"),
    pytest.param(pod("Running", deletionTimestamp="2023-11-14T22:13:25Z", deletionGracePeriodSeconds=5), 60,
                 "2023-11-14T22:13:25Z", 5, id="longer-grace-ignored"),
])
def test_pod_deletion_timestamp(obj, grace, timestamp, period):
    new = deletion.marked_for_deletion(PODS, obj, propagation_policy=None, grace_period_seconds=grace, now=NOW)
    assert (new["metadata"]["deletionTimestamp"], new["metadata"]["deletionGracePeriodSeconds"]) == \
        (timestamp, period)


def test_namespace_turns_terminating():
    ns = {"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    new = deletion.marked_for_deletion(NAMESPACES, ns, propagation_policy=None, grace_period_seconds=None, now=NOW)
    assert new["status"]["phase"] == "Terminating"
    assert not deletion.deletable_now(NAMESPACES, new)  # spec.finalizers hold it


@pytest.mark.parametrize(("info", "obj", "policy"), [
    pytest.param(PODS, pod("Running", finalizers=["x"], labels={"a": "b"}), "Foreground", id="pod"),
    pytest.param(JOBS, job(finalizers=["orphan"], deletionTimestamp="t"), "Background", id="job-drops-orphan"),
    pytest.param(NAMESPACES, {"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]},
                              "status": {"phase": "Active"}}, None, id="namespace"),
])
def test_the_stored_object_is_left_as_it_was(info, obj, policy):
    """Only metadata (and a namespace's status) are copied; whatever the new object shares
    with the stored one must still be the stored one's."""
    import copy

    before = copy.deepcopy(obj)
    new = deletion.marked_for_deletion(info, obj, propagation_policy=policy, grace_period_seconds=None, now=NOW)
    assert obj == before
    assert new != obj and new["metadata"]["deletionTimestamp"] and new["spec"] == obj["spec"]


@pytest.mark.parametrize(("info", "md", "want"), [
    pytest.param(JOBS, {}, False, id="not-deleted"),
    pytest.param(JOBS, {"deletionTimestamp": "t"}, True, id="deleted-no-finalizers"),
    pytest.param(JOBS, {"deletionTimestamp": "t", "finalizers": ["orphan"]}, False, id="finalizer-holds"),
    pytest.param(PODS, {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 30}, False,
                 id="pod-in-grace-waits-for-agent"),
    pytest.param(PODS, {"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0}, True, id="pod-grace-zero"),
])
def test_deletable_now(info, md, want):
    assert deletion.deletable_now(info, {"metadata": md}) is want


@pytest.mark.parametrize("name", deletion.DEFAULT_NAMESPACES)
def test_default_namespaces_are_kept(name):
    with pytest.raises(errors.StatusError) as exc:
        deletion.check_deletable(NAMESPACES, name)
    assert exc.value.code == 403
    assert exc.value.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'


def test_unknown_policy_is_422():
    deletion.check_policy("Orphan")
    with pytest.raises(errors.StatusError) as exc:
        deletion.check_policy("Sideways")
    assert exc.value.code == 422
