"""The authorizer, reviews and escalation checks on the real in-memory API stack, through
the in-process client acting as a user (what controllers do)."""

from __future__ import annotations

import asyncio

import pytest

from jobplane.api import errors
from jobplane.api.registry import (
    SELF_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_REVIEWS,
    SELF_SUBJECT_RULES_REVIEWS,
)
from jobplane.apiserver import authz, bootstrappolicy
from jobplane.apiserver.identity import ADMIN, acting_as, authenticated, service_account_user
from jobplane.apiserver.rbac_admission import RbacEscalationCheck
from jobplane.apiserver.rbac_authorizer import RbacAuthorizer
from jobplane.apiserver.reviews import Reviews
from jobplane.client.inproc import InProcessClient

JOB = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
    "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}
ALICE = authenticated("alice", ["devs"])


@pytest.fixture
async def secured(service):
    await bootstrappolicy.reconcile(service)
    rbac = RbacAuthorizer()
    await rbac.start(service)
    chain = authz.Chain([rbac])
    service.authorizer = chain
    service.reviews = Reviews(chain, rbac)
    service.admission_plugins.append(RbacEscalationCheck(chain, rbac))
    admin = InProcessClient(service, ADMIN)
    for ns in ("team-a", "team-b"):
        await admin.create("namespaces", {"metadata": {"name": ns}})
    yield admin
    await rbac.stop()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def bind(admin, ns, name, role, subject, kind="ClusterRole"):
    await admin.create("rolebindings", {"metadata": {"name": name}, "subjects": [subject],
                                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                                                    "name": role}}, ns)
    await settle()


async def test_namespaced_role_grants_only_its_namespace(secured, service):
    alice = InProcessClient(service, ALICE)
    with pytest.raises(errors.StatusError) as exc:
        await alice.create("jobs", JOB, "team-a")
    assert exc.value.code == 403
    await bind(secured, "team-a", "alice-edit", "edit", {"kind": "User", "name": "alice"})
    await alice.create("jobs", JOB, "team-a")
    assert [j["metadata"]["name"] for j in (await alice.list("jobs", "team-a"))["items"]] == ["j"]
    with pytest.raises(errors.StatusError) as exc:
        await alice.create("jobs", JOB, "team-b")
    assert exc.value.message == ('jobs.batch is forbidden: User "alice" cannot create resource "jobs" in API '
                                 'group "batch" in the namespace "team-b"')
    with pytest.raises(errors.StatusError):
        await alice.list("jobs")  # all namespaces: cluster scope
    # a group subject works as well
    await bind(secured, "team-b", "devs-view", "view", {"kind": "Group", "name": "devs"})
    assert (await alice.list("jobs", "team-b"))["items"] == []


async def test_escalation_needs_the_permissions_or_bind(secured, service):
    await bind(secured, "team-a", "alice-admin", "admin", {"kind": "User", "name": "alice"})
    alice = InProcessClient(service, ALICE)
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    await alice.create("rolebindings", {"metadata": {"name": "bob-view"}, "roleRef": {**ref, "name": "view"},
                                        "subjects": [{"kind": "User", "name": "bob"}]}, "team-a")
    with pytest.raises(errors.StatusError) as exc:
        await alice.create("rolebindings", {"metadata": {"name": "me-root"},
                                            "roleRef": {**ref, "name": "cluster-admin"},
                                            "subjects": [{"kind": "User", "name": "alice"}]}, "team-a")
    assert exc.value.code == 403
    assert 'is attempting to grant RBAC permissions not currently held' in exc.value.message
    with pytest.raises(errors.StatusError):
        await alice.create("roles", {"metadata": {"name": "nodes"}, "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}, "team-a")
    # with `bind` on cluster-admin, she may
    await secured.create("clusterroles", {"metadata": {"name": "binder"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["cluster-admin"]}]})
    await bind(secured, "team-a", "alice-binder", "binder", {"kind": "User", "name": "alice"})
    await alice.create("rolebindings", {"metadata": {"name": "me-root"}, "roleRef": {**ref, "name": "cluster-admin"},
                                        "subjects": [{"kind": "User", "name": "alice"}]}, "team-a")


async def test_reviews_answer_for_the_caller(secured, service):
    sa = service_account_user("team-a", "builder")
    await bind(secured, "team-a", "builder", "view",
               {"kind": "ServiceAccount", "name": "builder", "namespace": "team-a"})
    with acting_as(sa):
        who = await service.create(SELF_SUBJECT_REVIEWS, None, {"metadata": {}})
        assert who["status"]["userInfo"] == {"username": "system:serviceaccount:team-a:builder", "groups": [
            "system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"]}
        ssar = await service.create(SELF_SUBJECT_ACCESS_REVIEWS, None, {"spec": {"resourceAttributes": {
            "namespace": "team-a", "verb": "list", "group": "batch", "resource": "jobs"}}})
        assert ssar["status"] == {"allowed": True}
        ssar = await service.create(SELF_SUBJECT_ACCESS_REVIEWS, None, {"spec": {"resourceAttributes": {
            "namespace": "team-a", "verb": "create", "group": "batch", "resource": "jobs"}}})
        assert ssar["status"] == {"allowed": False}
        rules = await service.create(SELF_SUBJECT_RULES_REVIEWS, None, {"spec": {"namespace": "team-a"}})
        assert any("jobs" in r["resources"] and r["verbs"] == ["get", "list", "watch"]
                   for r in rules["status"]["resourceRules"])
        assert rules["status"]["incomplete"] is False
        with pytest.raises(errors.StatusError) as exc:
            await service.create(SELF_SUBJECT_ACCESS_REVIEWS, None, {"spec": {}})
        assert exc.value.code == 422


async def test_authorizer_follows_changes_and_caches(secured, service):
    rbac = service.authorizer.authorizers[0]
    attrs = authz.Attributes("get", True, "team-a", "batch", "jobs", name="j")
    assert rbac.authorize(ALICE, attrs) == (False, "")
    await bind(secured, "team-a", "alice-view", "view", {"kind": "User", "name": "alice"})
    assert rbac.authorize(ALICE, attrs) == (True, "")
    await secured.delete("rolebindings", "alice-view", "team-a")
    await settle()
    assert rbac.authorize(ALICE, attrs)[0] is False
    await bind(secured, "team-a", "alice-missing", "nope", {"kind": "User", "name": "alice"}, "Role")
    allowed, reason = rbac.authorize(ALICE, attrs)
    assert not allowed and reason == 'RBAC: role.rbac.authorization.k8s.io "nope" not found'
