"""Bootstrap tokens, the Node authorizer's graph and CSR strategies, without a server."""

from __future__ import annotations

import base64

import pytest

from jobplane.agent.bootstrap import csr_pem
from jobplane.api import certificates
from jobplane.api.rbac import Attributes
from jobplane.apiserver import bootstraptokens as bt
from jobplane.apiserver.identity import node_user
from jobplane.apiserver.node_authorizer import NO_PATH, NodeAuthorizer, NodeGraph, pod_references
from jobplane.certs import new_key
from jobplane.controllers.certificates import node_client_subject


def test_bootstrap_token_round_trip_and_refusals():
    token = bt.generate()
    assert bt.TOKEN_RE.match(token)
    secret = bt.secret_for(token, 2000.0)
    user = bt.user_for(token, secret, 1000.0)
    assert user is not None and user.name == f"system:bootstrap:{token[:6]}"
    assert user.groups == ("system:bootstrappers", bt.DEFAULT_GROUP, "system:authenticated")
    assert bt.user_for(token, secret, 2000.0) is None  # expired
    assert bt.user_for(token[:7] + "x" * 16, secret, 1000.0) is None  # wrong secret
    assert bt.user_for(token, {**secret, "type": "Opaque"}, 1000.0) is None
    bad_group = bt.secret_for(token, 2000.0, groups=["system:masters"])
    assert bt.user_for(token, bad_group, 1000.0) is None
    with pytest.raises(ValueError):
        bt.secret_for("not-a-token", 1.0)


def _pod(name, node, **spec):
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node, **spec}}


def test_graph_follows_pods_and_claims():
    pod = _pod("p", "n1", containers=[{"name": "c", "envFrom": [{"secretRef": {"name": "env-secret"}}]}],
               volumes=[{"name": "v", "configMap": {"name": "cm"}},
                        {"name": "d", "persistentVolumeClaim": {"claimName": "claim"}},
                        {"name": "t", "projected": {"sources": [{"secret": {"name": "proj"}}]}}],
               serviceAccountName="builder")
    assert pod_references(pod) == {("secrets", "ns", "env-secret"), ("configmaps", "ns", "cm"),
                                   ("persistentvolumeclaims", "ns", "claim"), ("secrets", "ns", "proj"),
                                   ("serviceaccounts", "ns", "builder")}
    graph = NodeGraph()
    graph.apply_pod("ADDED", pod)
    graph.apply_claim("ADDED", {"metadata": {"name": "claim", "namespace": "ns"}, "spec": {"volumeName": "pv-1"}})
    authz = NodeAuthorizer(graph)
    n1, n2 = node_user("n1"), node_user("n2")
    get = lambda res, name, ns="ns": Attributes("get", True, ns, "", res, "", name)  # noqa: E731
    assert authz.authorize(n1, get("secrets", "env-secret")) == (True, "")
    assert authz.authorize(n1, get("persistentvolumes", "pv-1", "")) == (True, "")
    assert authz.authorize(n2, get("secrets", "env-secret")) == (False, NO_PATH.format("n2"))
    assert authz.authorize(n1, get("secrets", "other")) == (False, NO_PATH.format("n1"))
    assert authz.authorize(n1, Attributes("list", True, "ns", "", "secrets"))[0] is False
    token = Attributes("create", True, "ns", "", "serviceaccounts", "token", "builder")
    assert authz.authorize(n1, token) == (True, "")
    # a sibling of the same template shares the one set of references, and keeps them
    # reachable while it is bound to the node
    graph.apply_pod("ADDED", {**pod, "metadata": {**pod["metadata"], "name": "p2"}})
    assert graph.pods[("ns", "p2")][1] is graph.pods[("ns", "p")][1]
    graph.apply_pod("DELETED", pod)
    assert authz.authorize(n1, get("secrets", "env-secret")) == (True, "")
    graph.apply_pod("DELETED", {**pod, "metadata": {**pod["metadata"], "name": "p2"}})
    assert authz.authorize(n1, get("secrets", "env-secret"))[0] is False
    assert authz.authorize(n1, token)[0] is False
    # other users: no opinion; node rules for the rest
    from jobplane.apiserver.identity import authenticated

    assert authz.authorize(authenticated("alice"), get("secrets", "env-secret")) == (False, "")
    assert authz.authorize(n1, Attributes("watch", True, "", "discovery.k8s.io", "endpointslices"))[0]
    assert authz.authorize(n1, Attributes("update", True, "kube-node-lease", "coordination.k8s.io", "leases", "",
                                          "n2"))[0] is False


def _csr(node: str = "n1", **spec) -> dict:
    request = base64.b64encode(csr_pem(node, new_key())).decode()
    return {"metadata": {"name": "c"}, "spec": {"request": request, "signerName": certificates.KUBELET_CLIENT_SIGNER,
                                                "usages": ["digital signature", "client auth"], **spec}}


def test_csr_validation_and_approval_strategy():
    csr = _csr()
    assert certificates.validate(csr) == []
    assert node_client_subject(certificates.parse_request(csr)) == "n1"
    bad = _csr(request=base64.b64encode(b"nonsense").decode(), usages=["flying"])
    assert [e.field for e in certificates.validate(bad)] == ["spec.request", "spec.usages[0]"]
    old = {**csr, "status": {}}
    new = {**csr, "spec": {**csr["spec"], "signerName": "x/y"},
           "status": {"certificate": "Zm9v", "conditions": [{"type": "Approved", "reason": "ok"}]}}
    assert certificates.prepare_approval(new, old) == []
    assert new["spec"]["signerName"] == certificates.KUBELET_CLIENT_SIGNER  # spec kept
    assert new["status"] == {"conditions": [{"type": "Approved", "reason": "ok", "status": "True"}]}
    both = {**csr, "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}]}}
    assert certificates.prepare_approval(both, new)


def test_agent_keeps_renews_and_requests_certificates(tmp_path):
    import asyncio
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from jobplane.agent import bootstrap
    from jobplane.apiserver.pki import ensure_pki
    from jobplane.apiserver.usercerts import sign_request

    pki = tmp_path / "ca"
    ensure_pki(pki)

    class FakeApi:
        def __init__(self, lifetime: datetime.timedelta) -> None:
            self.lifetime = lifetime
            self.made: dict = {}

        async def create(self, resource, body):
            self.made[body["metadata"]["name"]] = body
            return body

        async def get(self, resource, name):
            body = self.made[name]
            request = x509.load_pem_x509_csr(base64.b64decode(body["spec"]["request"]))
            pem, _ = sign_request(pki, request, body["spec"]["usages"], self.lifetime)
            return {**body, "status": {"certificate": base64.b64encode(pem).decode()}}

    data = tmp_path / "agent"
    cert, key = asyncio.run(bootstrap.request_certificate(FakeApi(datetime.timedelta(days=365)), "n1", data,
                                                          poll=0.01))
    assert (cert.stat().st_mode & 0o777, key.stat().st_mode & 0o777) == (0o600, 0o600)
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    assert issued.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    assert bootstrap.current(data, "n1") == (cert, key)
    assert bootstrap.current(data, "n2") is None
    late = issued.not_valid_after_utc - datetime.timedelta(days=10)
    assert bootstrap.current(data, "n1", late) is None  # due for renewal
    assert bootstrap.current(data, "n1", late, renew=False) == (cert, key)
    assert serialization.load_pem_private_key(key.read_bytes(), None)


def test_labels_a_node_may_not_set_on_itself():
    from jobplane.apiserver.node_authorizer import restricted_node_label

    for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone", "node.kubernetes.io/instance-type",
                "foo.node.kubernetes.io/bar", "kubelet.kubernetes.io/x", "example.com/team", "plain"):
        assert not restricted_node_label(key), key
    for key in ("node-role.kubernetes.io/control-plane", "node-restriction.kubernetes.io/dedicated",
                "a.node-restriction.kubernetes.io/b", "k8s.io/x", "sub.k8s.io/x", "kubernetes.io/other"):
        assert restricted_node_label(key), key


def test_recheck_reads_the_store_and_holds_refusals():
    import asyncio

    from jobplane.api.registry import PODS
    from jobplane.apiserver.service import ApiService
    from jobplane.clock import FakeClock
    from jobplane.storage.memory import MemoryStore

    async def run() -> None:
        store = MemoryStore()
        await store.start()
        service = ApiService(store, FakeClock())
        await service.ensure_default_namespaces()
        graph = NodeGraph()  # not fed: as if its watch had not seen the pod yet
        authz = NodeAuthorizer(graph, service)
        n1 = node_user("n1")
        used = Attributes("get", True, "default", "", "secrets", "", "s1")
        other = Attributes("get", True, "default", "", "secrets", "", "s2")
        await service.create(PODS, "default", {"metadata": {"name": "p"}, "spec": {
            "nodeName": "n1", "containers": [{"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": "s1"}}]}]}})
        assert authz.authorize(n1, used)[0] is False
        assert await authz.recheck(n1, used) is True
        assert graph.pods == {}  # the graph stays its watch's
        assert await authz.recheck(n1, other) is False
        assert (("n1", other)) in authz._refused
        await store.close()

    asyncio.run(run())
