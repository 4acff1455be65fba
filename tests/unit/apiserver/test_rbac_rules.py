"""RBAC evaluation, pure: rule matching, coverage, aggregation, token files, messages."""

from __future__ import annotations

import pytest

from jobplane.api.rbac import Attributes, Rule, aggregate_all, uncovered
from jobplane.apiserver import authn, authz, bootstrappolicy
from jobplane.apiserver.identity import authenticated


def r(verbs, groups=(), resources=(), names=(), urls=()) -> Rule:
    return Rule(tuple(verbs), tuple(groups), tuple(resources), tuple(names), tuple(urls))


def test_rule_matches_like_upstream():
    get_jobs = r(["get"], ["batch"], ["jobs"])
    assert get_jobs.allows(Attributes("get", True, "ns", "batch", "jobs"))
    assert not get_jobs.allows(Attributes("list", True, "ns", "batch", "jobs"))
    assert not get_jobs.allows(Attributes("get", True, "ns", "", "jobs"))
    assert not get_jobs.allows(Attributes("get", True, "ns", "batch", "jobs", "status"))
    assert r(["get"], ["batch"], ["jobs/status"]).allows(Attributes("get", True, "", "batch", "jobs", "status"))
    assert r(["get"], [""], ["*/log"]).allows(Attributes("get", True, "", "", "pods", "log"))
    assert r(["*"], ["*"], ["*"]).allows(Attributes("escalate", True, "", "x", "y", "z"))
    named = r(["get"], [""], ["pods"], ["a"])
    assert named.allows(Attributes("get", True, "", "", "pods", name="a"))
    assert not named.allows(Attributes("get", True, "", "", "pods", name="b"))
    assert not named.allows(Attributes("list", True, "", "", "pods"))
    urls = r(["get"], urls=["/healthz", "/apis/*"])
    assert urls.allows(Attributes("get", False, path="/healthz"))
    assert urls.allows(Attributes("get", False, path="/apis/batch/v1"))
    assert not urls.allows(Attributes("get", False, path="/metrics"))
    assert not urls.allows(Attributes("get", True, "", "", "pods"))


def test_coverage_for_escalation_checks():
    owner = [r(["get", "list"], [""], ["pods"]), r(["*"], ["batch"], ["*"]), r(["get"], urls=["/api/*"])]
    assert uncovered(owner, [r(["get"], [""], ["pods"])]) == []
    assert uncovered(owner, [r(["create", "delete"], ["batch"], ["jobs", "cronjobs/status"])]) == []
    assert uncovered(owner, [r(["get"], urls=["/api/v1"])]) == []
    missing = uncovered(owner, [r(["get", "delete"], [""], ["pods", "secrets"])])
    assert missing == [r(["delete"], [""], ["pods"]), r(["get"], [""], ["secrets"]), r(["delete"], [""], ["secrets"])]
    # a rule limited to names does not cover the whole resource
    assert uncovered([r(["get"], [""], ["pods"], ["a"])], [r(["get"], [""], ["pods"])])


def test_default_roles_aggregate_view_into_edit_into_admin():
    roles = bootstrappolicy.cluster_roles()
    rules = aggregate_all(roles)
    def allows(role: str, *attrs: Attributes) -> bool:
        rs = [Rule.from_obj(x) for x in rules[role]]
        return all(any(x.allows(a) for x in rs) for a in attrs)
    create_job = Attributes("create", True, "ns", "batch", "jobs")
    watch_job = Attributes("watch", True, "ns", "batch", "jobs")
    logs = Attributes("get", True, "ns", "", "pods", "log")
    bind = Attributes("create", True, "ns", "rbac.authorization.k8s.io", "rolebindings")
    assert allows("view", watch_job, logs) and not allows("view", create_job)
    assert not allows("view", Attributes("get", True, "ns", "", "secrets"))
    assert allows("edit", create_job, watch_job, logs, Attributes("get", True, "ns", "", "secrets"))
    assert not allows("edit", bind)
    assert allows("admin", create_job, bind)


def test_forbidden_messages_are_upstreams():
    alice = authenticated("alice")
    err = authz.forbidden(alice, Attributes("create", True, "team-b", "batch", "jobs"))
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == ('jobs.batch is forbidden: User "alice" cannot create resource "jobs" in API group '
                           '"batch" in the namespace "team-b"')
    err = authz.forbidden(alice, Attributes("get", True, "ns", "", "pods", "log", "p1"))
    assert err.message == ('pods "p1" is forbidden: User "alice" cannot get resource "pods/log" in API group "" '
                           'in the namespace "ns"')
    err = authz.forbidden(alice, Attributes("list", True, "", "", "nodes"))
    assert err.message.endswith('cannot list resource "nodes" in API group "" at the cluster scope')
    err = authz.forbidden(alice, Attributes("get", False, path="/metrics"))
    assert err.message == 'forbidden: User "alice" cannot get path "/metrics"'


def test_request_verbs():
    from jobplane.api.registry import JOBS

    def verb(method, name=None, query=None, watch_prefix=False, sub=None):
        return authz.resource_attributes(method, JOBS, "ns", name, sub, query or {}, watch_prefix)
    assert verb("GET").verb == "list" and verb("GET", "a").verb == "get"
    assert verb("GET", query={"watch": "true"}).verb == "watch" and verb("GET", watch_prefix=True).verb == "watch"
    named = verb("GET", query={"watch": "1", "fieldSelector": "metadata.name=x"})
    assert (named.verb, named.name) == ("watch", "x")
    assert verb("DELETE").verb == "deletecollection" and verb("DELETE", "a").verb == "delete"
    assert verb("PATCH", "a", sub="status").subresource == "status"


def test_token_file_is_upstreams_csv():
    users = authn.parse_token_file('t1,alice,uid-1,"devs,ops"\nt2,bob,uid-2\n\n,nobody,x\n')
    assert users["t1"].name == "alice" and users["t1"].uid == "uid-1"
    assert users["t1"].groups == ("devs", "ops", "system:authenticated")
    assert users["t2"].groups == ("system:authenticated",)
    assert "" not in users
    with pytest.raises(ValueError, match="at least 3 columns"):
        authn.parse_token_file("t1,alice\n")


def test_decision_cache_stays_small_when_every_request_names_a_new_object():
    from jobplane.apiserver import rbac_authorizer
    from jobplane.apiserver.identity import UserInfo

    rbac = rbac_authorizer.RbacAuthorizer()
    user = UserInfo("system:serviceaccount:kube-system:job-controller", "", ("system:authenticated",))
    for i in range(rbac_authorizer._CACHE_MAX + 100):  # an Event's create each, never asked again
        rbac.authorize(user, Attributes("create", True, "default", "", "events", name=f"p{i}.17f3a2b4"))
        assert len(rbac._cache) <= rbac_authorizer._CACHE_MAX
    assert rbac_authorizer._CACHE_MAX <= 4_096
