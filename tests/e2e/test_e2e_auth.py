"""Who may do what, end to end: certificates from ``jobplane kubeconfig``, static tokens,
RBAC with upstream's default roles, 403s with upstream's messages, ``kubectl auth can-i``
and ``whoami``, escalation prevention, impersonation, revocation."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

KUBECTL = "/usr/bin/kubectl"

JOB_403 = ('jobs.batch is forbidden: User "alice" cannot create resource "jobs" in API group "batch" '
           'in the namespace "team-b"')


@pytest.fixture(scope="module")
def srv(module_server_factory, tmp_path_factory):
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.csv"
    tokens.write_text('carol-token,carol,uid-carol,"ops,devs"\n')
    server = module_server_factory("--no-agent", "--token-auth-file", str(tokens))
    server.kubectl("create", "namespace", "team-a", check=True)
    server.kubectl("create", "namespace", "team-b", check=True)
    return server


def issue(srv, user: str, *extra: str) -> str:
    path = srv.data_dir.parent / f"{user}.kubeconfig"
    subprocess.run([sys.executable, "-m", "jobplane", "kubeconfig", "--data-dir", str(srv.data_dir), "--user", user,
                    "--namespace", "team-a", "--output", str(path), *extra], check=True, env=srv.env,
                   capture_output=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return str(path)


def as_user(srv, kubeconfig: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, *args], env=srv.env, capture_output=True,
                          text=True, timeout=60)


def test_team_member_in_two_commands(srv):
    alice = issue(srv, "alice", "--group", "devs")
    srv.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", "team-a",
                check=True)
    who = as_user(srv, alice, "auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"] == {"username": "alice",
                                                            "groups": ["devs", "system:authenticated"]}
    assert as_user(srv, alice, "create", "job", "j1", "--image=busybox", "--", "true").returncode == 0
    denied = as_user(srv, alice, "-n", "team-b", "create", "job", "j1", "--image=busybox", "--", "true")
    assert denied.returncode == 1 and JOB_403 in denied.stderr
    watch = as_user(srv, alice, "-n", "team-b", "get", "jobs", "--watch", "--request-timeout=5s")
    assert ('jobs.batch is forbidden: User "alice" cannot list resource "jobs" in API group "batch" in the '
            'namespace "team-b"') in watch.stderr
    watched = as_user(srv, alice, "get", "jobs", "--watch-only", "--request-timeout=1s", "-o", "name")
    assert "forbidden" not in watched.stderr
    logs = as_user(srv, alice, "-n", "team-b", "logs", "nothing")
    assert 'pods "nothing" is forbidden: User "alice" cannot get resource "pods" in API group "" in the ' \
           'namespace "team-b"' in logs.stderr
    raw = as_user(srv, alice, "get", "--raw", "/metrics")
    assert 'forbidden: User "alice" cannot get path "/metrics"' in raw.stderr

    assert as_user(srv, alice, "auth", "can-i", "create", "jobs").stdout.strip() == "yes"
    no = as_user(srv, alice, "auth", "can-i", "create", "jobs", "-n", "team-b")
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    listed = as_user(srv, alice, "auth", "can-i", "--list").stdout
    assert "jobs.batch" in listed and "selfsubjectaccessreviews.authorization.k8s.io" in listed

    admin = srv.kubectl("auth", "whoami", check=True).stdout
    assert "jobplane-admin" in admin and "system:masters" in admin
    assert srv.kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"
    assert "*.*" in srv.kubectl("auth", "can-i", "--list", check=True).stdout

    # the Python client with alice's kubeconfig
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = client.BatchV1Api(config.new_client_from_config(config_file=alice))
    body = {"metadata": {"name": "py"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}
    assert api.create_namespaced_job("team-a", body).metadata.name == "py"
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_job("team-b", body)
    assert exc.value.status == 403 and json.loads(exc.value.body)["message"] == JOB_403


def test_no_escalation_without_escalate_or_bind(srv):
    dave = issue(srv, "dave")
    srv.kubectl("create", "rolebinding", "dave-admin", "--clusterrole=admin", "--user=dave", "-n", "team-a",
                check=True)
    ok = as_user(srv, dave, "create", "rolebinding", "erin-view", "--clusterrole=view", "--user=erin")
    assert ok.returncode == 0, ok.stderr
    root = as_user(srv, dave, "create", "rolebinding", "dave-root", "--clusterrole=cluster-admin", "--user=dave")
    assert root.returncode == 1
    assert ('rolebindings.rbac.authorization.k8s.io "dave-root" is forbidden: user "dave" (groups=["system:'
            'authenticated"]) is attempting to grant RBAC permissions not currently held') in root.stderr
    crb = as_user(srv, dave, "create", "clusterrolebinding", "dave-root", "--clusterrole=cluster-admin",
                  "--user=dave")
    assert "cannot create resource \"clusterrolebindings\"" in crb.stderr


def test_impersonation_only_when_allowed(srv):
    frank = issue(srv, "frank")
    srv.kubectl("create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", "team-a", check=True)
    # kubectl reports a refused discovery request as "unknown": fill its discovery cache first
    assert "forbidden" in as_user(srv, frank, "get", "jobs").stderr
    denied = as_user(srv, frank, "get", "jobs", "--as=bob")
    assert 'users "bob" is forbidden: User "frank" cannot impersonate resource "users" in API group "" at the ' \
           'cluster scope' in denied.stderr
    srv.kubectl("create", "clusterrole", "impersonate-bob", "--verb=impersonate", "--resource=users",
                "--resource-name=bob", check=True)
    srv.kubectl("create", "clusterrolebinding", "frank-as-bob", "--clusterrole=impersonate-bob", "--user=frank",
                check=True)
    assert as_user(srv, frank, "get", "jobs", "--as=bob").returncode == 0
    assert as_user(srv, frank, "auth", "whoami", "--as=bob", "-o", "jsonpath={.status.userInfo.username}"
                   ).stdout == "bob"
    group = as_user(srv, frank, "get", "jobs", "--as=bob", "--as-group=system:masters")
    assert 'groups "system:masters" is forbidden' in group.stderr
    # the admin may impersonate anyone, e.g. a service account
    sa = srv.kubectl("auth", "can-i", "list", "jobs", "-n", "team-a", "--as=system:serviceaccount:team-a:builder")
    assert sa.stdout.strip() == "no"
    srv.kubectl("create", "rolebinding", "builder", "--clusterrole=view", "--serviceaccount=team-a:builder",
                "-n", "team-a", check=True)
    sa = srv.kubectl("auth", "can-i", "list", "jobs", "-n", "team-a", "--as=system:serviceaccount:team-a:builder")
    assert sa.stdout.strip() == "yes"


def test_static_tokens_bad_credentials_and_revocation(srv):
    carol = ["--server", srv.url, "--certificate-authority", str(srv.ca_file())]
    who = subprocess.run([KUBECTL, *carol, "--token", "carol-token", "auth", "whoami", "-o", "json"],
                         capture_output=True, text=True, env={"HOME": str(srv.home)})
    assert json.loads(who.stdout)["status"]["userInfo"] == {
        "username": "carol", "uid": "uid-carol", "groups": ["ops", "devs", "system:authenticated"]}
    bad = subprocess.run([KUBECTL, *carol, "--token", "nope", "get", "jobs"], capture_output=True, text=True,
                         env={"HOME": str(srv.home)})
    # kubectl words it "(Unauthorized)" from a cached discovery, else from its discovery client
    assert "error: You must be logged in to the server (" in bad.stderr
    assert "Unauthorized" in bad.stderr or "asked for the client to provide credentials" in bad.stderr
    gina = issue(srv, "gina")
    assert as_user(srv, gina, "auth", "whoami").returncode == 0
    subprocess.run([sys.executable, "-m", "jobplane", "kubeconfig", "--data-dir", str(srv.data_dir), "--user",
                    "gina", "--revoke"], check=True, env=srv.env, capture_output=True)
    import time

    time.sleep(1.1)  # the deny list is re-read at most once a second
    revoked = as_user(srv, gina, "auth", "whoami")
    assert "Unauthorized" in revoked.stderr


def test_streaming_and_metrics_need_their_grants(srv):
    """exec over WebSocket needs ``create`` on pods/exec besides ``get`` (upstream's
    AuthorizePodWebsocketUpgradeCreatePermission); /metrics needs a nonResourceURL grant."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shell", "namespace": "team-a"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(pod), check=True)
    srv.kubectl("create", "role", "peek", "--verb=get", "--resource=pods,pods/exec", "-n", "team-a", check=True)
    srv.kubectl("create", "rolebinding", "hank-peek", "--role=peek", "--user=hank", "-n", "team-a", check=True)
    denied = srv.kubectl("exec", "-n", "team-a", "shell", "--as=hank", "--", "true")
    assert ('pods "shell" is forbidden: User "hank" cannot create resource "pods/exec" in API group "" in the '
            'namespace "team-a"') in denied.stderr
    assert srv.kubectl("get", "--raw", "/metrics", "--as=hank").returncode == 1
    assert "forbidden" in srv.kubectl("get", "--raw", "/metrics", "--as=hank").stderr
    assert srv.kubectl("get", "--raw", "/metrics", "--as=hank", "--as-group=system:monitoring").returncode == 0


def test_bound_token_stops_working_when_its_pod_is_deleted(srv):
    """TokenRequest with boundObjectRef to a pod: the token names the pod (extra
    ``authentication.kubernetes.io/pod-name``/``pod-uid``) and is refused once the pod is gone,
    also when a new pod of the same name (another uid) takes its place."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder", "namespace": "team-a"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(pod), check=True)
    uid = srv.kubectl("-n", "team-a", "get", "pod", "holder", "-o", "jsonpath={.metadata.uid}", check=True).stdout
    token = srv.kubectl("-n", "team-a", "create", "token", "default", "--bound-object-kind", "Pod",
                        "--bound-object-name", "holder", check=True).stdout.strip()
    bearer = ["--server", srv.url, "--certificate-authority", str(srv.ca_file()), "--token", token]

    def whoami() -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, *bearer, "auth", "whoami", "-o", "json"], capture_output=True, text=True,
                              env={"HOME": str(srv.home)})

    info = json.loads(whoami().stdout)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:team-a:default"
    assert info["extra"]["authentication.kubernetes.io/pod-name"] == ["holder"]
    assert info["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    srv.kubectl("-n", "team-a", "delete", "pod", "holder", "--grace-period=0", "--force", check=True)
    gone = whoami()
    assert gone.returncode == 1 and "Unauthorized" in gone.stderr
    srv.kubectl("create", "-f", "-", input=json.dumps(pod), check=True)  # same name, new uid
    again = whoami()
    assert again.returncode == 1 and "Unauthorized" in again.stderr


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_service_account_issuer_discovery_publishes_the_keys_that_verify_its_tokens(srv):
    """/.well-known/openid-configuration and /openid/v1/jwks, readable by every service account
    (upstream's system:service-account-issuer-discovery binding): an outside party verifies a
    service-account token with the published key alone."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    token = srv.kubectl("-n", "team-a", "create", "token", "default", check=True).stdout.strip()
    bearer = ["--server", srv.url, "--certificate-authority", str(srv.ca_file()), "--token", token]

    def raw(path: str, *auth: str) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, *auth, "get", "--raw", path], capture_output=True, text=True,
                              env={"HOME": str(srv.home)})

    config = json.loads(raw("/.well-known/openid-configuration", *bearer).stdout)
    header, payload, signature = token.split(".")
    claims, head = json.loads(_unb64(payload)), json.loads(_unb64(header))
    assert config == {"issuer": claims["iss"], "jwks_uri": f"{srv.url}/openid/v1/jwks",
                      "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": [head["alg"]]}
    keys = json.loads(raw("/openid/v1/jwks/", *bearer).stdout)["keys"]
    assert [(k["kid"], k["alg"], k["use"], k["kty"]) for k in keys] == [(head["kid"], "ES256", "sig", "EC")]
    key = ec.EllipticCurvePublicNumbers(int.from_bytes(_unb64(keys[0]["x"]), "big"),
                                        int.from_bytes(_unb64(keys[0]["y"]), "big"), ec.SECP256R1()).public_key()
    sig = _unb64(signature)
    key.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
               f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if it does not verify
    # a user who is no service account gets nothing unless granted it
    denied = as_user(srv, issue(srv, "dave"), "get", "--raw", "/openid/v1/jwks")
    assert denied.returncode == 1 and "Forbidden" in denied.stderr, denied.stderr
