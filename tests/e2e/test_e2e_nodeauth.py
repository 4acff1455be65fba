"""Node credentials end to end: ``jobplane token create`` makes a bootstrap token, a standalone
``jobplane agent --bootstrap-token-file`` exchanges it for its own client certificate through a
CertificateSigningRequest (auto-approved, signed by the controller manager), runs a pod, and
with that certificate may read what its pods use and change only its own Node and pods, as
upstream's Node authorizer and NodeRestriction allow."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from jobs_helpers import AgentProcess, runtime_pods_dir, wait_for

from jobplane.agent import rundir

NODE = "boot-node"


def _agent(srv, data_dir: Path, token_file: Path) -> AgentProcess:
    return AgentProcess(["--server", srv.url, "--bootstrap-token-file", str(token_file),
                         "--ca-file", str(srv.ca_file()), "--name", NODE,
                         "--address", "127.0.0.1", "--port", "0", "--node-ip", "127.0.0.1"], data_dir, srv.env)


@pytest.fixture(scope="module")
def env(module_server_factory, tmp_path_factory):
    srv = module_server_factory("--no-agent")
    root = tmp_path_factory.mktemp("node")
    made = subprocess.run([sys.executable, "-m", "jobplane", "token", "create", "--data-dir", str(srv.data_dir),
                           "--ttl", "1h"], env=srv.env, capture_output=True, text=True, check=True)
    token = made.stdout.strip()
    token_file = root / "bootstrap-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    agent = _agent(srv, root / "agent", token_file)
    try:
        wait_for(lambda: srv.kubectl("get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')]"
                                   ".status}").stdout == "True", 60, 0.2, "the agent's node to be Ready")
        yield srv, root / "agent", token
    finally:
        agent.stop()
        print("--- agent output ---\n" + "".join(agent.output[-100:]))


def node_kubeconfig(srv, agent_dir: Path, path: Path) -> str:
    pki = agent_dir / "pki"
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "node",
           "clusters": [{"name": "c", "cluster": {"server": srv.url, "certificate-authority": str(srv.ca_file())}}],
           "users": [{"name": "node", "user": {"client-certificate": str(pki / "node-client.crt"),
                                               "client-key": str(pki / "node-client.key")}}],
           "contexts": [{"name": "node", "context": {"cluster": "c", "user": "node"}}]}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_bootstrap_token_exchanged_for_a_node_certificate(env):
    srv, agent_dir, token = env
    token_id = token.split(".")[0]
    secret = json.loads(srv.kubectl("-n", "kube-system", "get", "secret", f"bootstrap-token-{token_id}", "-o",
                                    "json", check=True).stdout)
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["token-id"] == token_id and data["token-secret"] == token.split(".")[1]
    assert data["usage-bootstrap-authentication"] == "true" and data["expiration"].endswith("Z")
    for name in ("node-client.crt", "node-client.key"):
        assert stat.S_IMODE((agent_dir / "pki" / name).stat().st_mode) == 0o600
    csrs = json.loads(srv.kubectl("get", "csr", "-o", "json", check=True).stdout)["items"]
    mine = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{token_id}"]
    assert len(mine) == 1
    assert mine[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert [(c["type"], c["reason"]) for c in mine[0]["status"]["conditions"]] == [("Approved", "AutoApproved")]
    assert mine[0]["status"]["certificate"]
    table = srv.kubectl("get", "csr", mine[0]["metadata"]["name"], check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert table[1].split()[2:] == ["kubernetes.io/kube-apiserver-client-kubelet", f"system:bootstrap:{token_id}",
                                    "<none>", "Approved,Issued"]
    kc = node_kubeconfig(srv, agent_dir, agent_dir.parent / "node.kubeconfig")
    who = subprocess.run(["/usr/bin/kubectl", "--kubeconfig", kc, "auth", "whoami", "-o", "json"], env=srv.env,
                         capture_output=True, text=True)
    assert json.loads(who.stdout)["status"]["userInfo"] == {
        "username": f"system:node:{NODE}", "groups": ["system:nodes", "system:authenticated"]}
    # the bootstrap token itself may do nothing but bootstrap
    listed = subprocess.run(["/usr/bin/kubectl", "--server", srv.url, "--certificate-authority", str(srv.ca_file()),
                             "--token", token, "get", "secrets", "-A"], env={"HOME": str(srv.home)},
                            capture_output=True, text=True)
    assert f'User "system:bootstrap:{token_id}" cannot list resource "secrets"' in listed.stderr
    jp = [sys.executable, "-m", "jobplane", "token"]
    shown = subprocess.run([*jp, "list", "--data-dir", str(srv.data_dir)], env=srv.env, capture_output=True,
                           text=True, check=True).stdout
    assert token_id in shown and token.split(".")[1] not in shown and "authentication,signing" in shown
    subprocess.run([*jp, "delete", token_id, "--data-dir", str(srv.data_dir)], env=srv.env, check=True,
                   capture_output=True)
    gone = subprocess.run(["/usr/bin/kubectl", "--server", srv.url, "--certificate-authority", str(srv.ca_file()),
                           "--token", token, "auth", "whoami"], env={"HOME": str(srv.home)}, capture_output=True,
                          text=True)
    assert gone.returncode == 1 and "Unauthorized" in gone.stderr
    assert json.loads(subprocess.run(["/usr/bin/kubectl", "--kubeconfig", kc, "auth", "whoami", "-o", "json"],
                                     env=srv.env, capture_output=True, text=True).stdout)  # the node's cert stays


def test_node_reads_only_what_its_pods_use_and_changes_only_its_own(env):
    srv, agent_dir, _ = env
    srv.kubectl("create", "namespace", "na", check=True)
    srv.kubectl("-n", "na", "create", "secret", "generic", "used", "--from-literal=k=v1", check=True)
    srv.kubectl("-n", "na", "create", "secret", "generic", "unused", "--from-literal=k=v2", check=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reader", "namespace": "na"},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "c", "image": "busybox", "command": ["sh", "-c", "echo $K"],
               "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "used", "key": "k"}}}]}]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(pod), check=True)
    wait_for(lambda: srv.kubectl("-n", "na", "get", "pod", "reader", "-o", "jsonpath={.status.phase}").stdout
           == "Succeeded", 60, 0.2, "the pod to run on the agent's node")
    assert srv.kubectl("-n", "na", "logs", "reader", check=True).stdout == "v1\n"
    # another node and a pod bound to it
    srv.kubectl("create", "-f", "-", check=True, input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "other-node"}}))
    other_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "theirs", "namespace": "na"},
                 "spec": {"nodeName": "other-node", "containers": [{"name": "c", "image": "busybox"}]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(other_pod), check=True)

    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    kc = node_kubeconfig(srv, agent_dir, agent_dir.parent / "node2.kubeconfig")
    core = client.CoreV1Api(config.new_client_from_config(config_file=kc))
    assert core.read_namespaced_secret("used", "na").data == {"k": base64.b64encode(b"v1").decode()}

    def refused(call, *args, **kwargs) -> str:
        with pytest.raises(ApiException) as exc:
            call(*args, **kwargs)
        assert exc.value.status == 403
        return json.loads(exc.value.body)["message"]

    assert refused(core.read_namespaced_secret, "unused", "na") == (
        f'secrets "unused" is forbidden: User "system:node:{NODE}" cannot get resource "secrets" in API group "" '
        f"in the namespace \"na\": no relationship found between node '{NODE}' and this object")
    assert "cannot list resource" in refused(core.list_namespaced_secret, "na")
    assert refused(core.patch_node, "other-node", {"metadata": {"labels": {"x": "y"}}}) == (
        f'nodes "other-node" is forbidden: node "{NODE}" is not allowed to modify node "other-node"')
    assert core.patch_node(NODE, {"metadata": {"labels": {"x": "y"}}}).metadata.labels["x"] == "y"
    assert refused(core.patch_node, NODE, {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}) \
        == f'nodes "{NODE}" is forbidden: node "{NODE}" is not allowed to modify labels: ' \
           "node-role.kubernetes.io/control-plane"
    assert "is not allowed to modify taints" in refused(
        core.patch_node, NODE, {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
    assert refused(core.patch_namespaced_pod_status, "theirs", "na", {"status": {"phase": "Failed"}}) == (
        f'pods "theirs" is forbidden: node "{NODE}" can only update pod status for pods with spec.nodeName set '
        "to itself")
    assert "can only delete pods with spec.nodeName set to itself" in refused(
        core.delete_namespaced_pod, "theirs", "na")
    assert "cannot patch resource \"pods\"" in refused(core.patch_namespaced_pod, "reader", "na",
                                                          {"metadata": {"labels": {"a": "b"}}})
    assert 'cannot create resource "configmaps"' in refused(
        core.create_namespaced_config_map, "na", {"metadata": {"name": "x"}})
    lease = client.CoordinationV1Api(config.new_client_from_config(config_file=kc))
    assert lease.read_namespaced_lease(NODE, "kube-node-lease").metadata.name == NODE
    assert "can only access node lease with the same name" in refused(
        lease.read_namespaced_lease, "other-node", "kube-node-lease")
    # a token for a pod on another node
    body = {"spec": {"audiences": ["x"], "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "theirs"}}}
    assert "requested token bound to a pod scheduled on a different node" in refused(
        core.create_namespaced_service_account_token, "default", "na", body)


def test_standalone_agent_keeps_secret_volumes_in_its_runtime_dir(env):
    """``jobplane agent`` puts a pod's secret volume in its runtime directory (tmpfs where
    there is one), with the mode the volume asks for, and removes it with the pod."""
    srv, agent_dir, _ = env
    srv.kubectl("create", "namespace", "rt", check=True)
    srv.kubectl("-n", "rt", "create", "secret", "generic", "vol", "--from-literal=k=v3", check=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder", "namespace": "rt"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [{
               "name": "c", "image": "busybox", "command": ["sh", "-c", "cat /s/k; echo; exec sleep 300"],
               "volumeMounts": [{"name": "s", "mountPath": "/s"}]}],
               "volumes": [{"name": "s", "secret": {"secretName": "vol", "defaultMode": 0o400}}]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(pod), check=True)
    wait_for(lambda: srv.kubectl("-n", "rt", "logs", "holder").stdout == "v3\n", 60, 0.2, "the pod to read its secret")
    uid = srv.kubectl("-n", "rt", "get", "pod", "holder", "-o", "jsonpath={.metadata.uid}", check=True).stdout
    run = runtime_pods_dir(agent_dir)
    assert run != agent_dir / "pods" or rundir.fs_type("/dev/shm", Path("/proc/self/mountinfo").read_text()) != "tmpfs"
    secret = run / uid / "volumes" / "s" / "k"
    assert secret.read_text() == "v3" and stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert (agent_dir / "pods" / uid / "logs" / "c" / "0.log").exists()  # logs stay on disk
    srv.kubectl("-n", "rt", "delete", "pod", "holder", "--wait=true", "--timeout=30s", check=True)
    wait_for(lambda: not (run / uid).exists(), 10, 0.1, "the pod's runtime files to go")


def test_user_certificate_through_kubectl_certificate_approve(env, tmp_path):
    """A person's CSR (signer kubernetes.io/kube-apiserver-client) is never auto-approved;
    ``kubectl certificate approve`` (a protobuf PUT on /approval) lets the signer issue it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from jobplane.certs import key_pem, new_key

    srv = env[0]
    key = new_key()
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devs"), x509.NameAttribute(NameOID.COMMON_NAME, "bob")
    ])).sign(key, hashes.SHA256())
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "bob"},
           "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                    "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 3600,
                    "usages": ["client auth"]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(csr), check=True)
    time.sleep(1)
    assert srv.kubectl("get", "csr", "bob", "-o", "jsonpath={.status}").stdout in ("", "{}")  # pending
    # update on the approval subresource is not enough: approving needs ``approve`` on the signer
    srv.kubectl("create", "clusterrole", "csr-approver", "--verb=get,list,update",
                "--resource=certificatesigningrequests,certificatesigningrequests/approval", check=True)
    srv.kubectl("create", "clusterrolebinding", "carl-csr", "--clusterrole=csr-approver", "--user=carl", check=True)
    refused = srv.kubectl("certificate", "approve", "bob", "--as=carl")
    assert 'user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"' in \
        refused.stderr
    signer_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "client-signer"},
                   "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
                              "resourceNames": ["kubernetes.io/kube-apiserver-client"]}]}
    srv.kubectl("create", "-f", "-", input=json.dumps(signer_role), check=True)
    srv.kubectl("create", "clusterrolebinding", "carl-signer", "--clusterrole=client-signer", "--user=carl",
                check=True)
    srv.kubectl("certificate", "approve", "bob", "--as=carl", check=True)
    cert = wait_for(lambda: srv.kubectl("get", "csr", "bob", "-o", "jsonpath={.status.certificate}").stdout, 20,
                  0.2, "the signed certificate")
    (tmp_path / "bob.crt").write_bytes(base64.b64decode(cert))
    (tmp_path / "bob.key").write_bytes(key_pem(key))
    who = subprocess.run(["/usr/bin/kubectl", "--server", srv.url, "--certificate-authority", str(srv.ca_file()),
                          "--client-certificate", str(tmp_path / "bob.crt"), "--client-key", str(tmp_path / "bob.key"),
                          "auth", "whoami", "-o", "json"], env={"HOME": str(srv.home)}, capture_output=True,
                         text=True)
    assert json.loads(who.stdout)["status"]["userInfo"] == {"username": "bob",
                                                            "groups": ["devs", "system:authenticated"]}
    denied = srv.kubectl("certificate", "deny", "bob")
    assert 'certificate signing request "bob" is already Approved' in denied.stderr
