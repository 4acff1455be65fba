"""ConfigMaps, Secrets, ServiceAccounts, Services, EndpointSlices, PersistentVolumeClaims,
PersistentVolumes and StorageClasses through the real kubectl 1.32 and the ``kubernetes``
client: create (typed protobuf and manifests), Table columns as upstream prints them,
apply, patch, validation, immutability, watch and delete."""

from __future__ import annotations

import base64
import json
import time

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jobplane.apiserver import satokens

CM_COLUMNS = ["NAME", "DATA", "AGE"]
SECRET_COLUMNS = ["NAME", "TYPE", "DATA", "AGE"]
SA_COLUMNS = ["NAME", "SECRETS", "AGE"]
SVC_COLUMNS = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
EPS_COLUMNS = ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
PVC_COLUMNS = ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
               "AGE"]
SC_COLUMNS = ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]


def header(out: str) -> list[str]:
    """Column names of kubectl's table (they are separated by 3+ spaces, names may hold one)."""
    import re

    return re.split(r"\s{2,}", out.splitlines()[0].strip())


def test_configmaps_and_secrets(jp, tmp_path):
    (tmp_path / "game.properties").write_text("lives=3\n")
    (tmp_path / "app.env").write_text("# comment\nMODE=fast\nLEVEL=2\n")
    assert jp.kubectl("create", "configmap", "cfg", "--from-literal=greeting=hello", "--from-literal=n=1",
                      f"--from-file={tmp_path / 'game.properties'}", check=True).stdout.strip() == \
        "configmap/cfg created"
    jp.kubectl("create", "configmap", "envcfg", f"--from-env-file={tmp_path / 'app.env'}", check=True)
    cm = json.loads(jp.kubectl("get", "cm", "cfg", "-o", "json", check=True).stdout)
    assert cm["data"] == {"greeting": "hello", "n": "1", "game.properties": "lives=3\n"}
    assert json.loads(jp.kubectl("get", "configmap", "envcfg", "-o", "json", check=True).stdout)["data"] == \
        {"MODE": "fast", "LEVEL": "2"}
    out = jp.kubectl("get", "configmaps", check=True).stdout
    assert header(out) == CM_COLUMNS
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["cfg"][1] == "3" and rows["envcfg"][1] == "2"

    assert jp.kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin",
                      "--from-literal=password=s3cret", check=True).stdout.strip() == "secret/creds created"
    secret = yaml.safe_load(jp.kubectl("get", "secret", "creds", "-o", "yaml", check=True).stdout)
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"user": base64.b64encode(b"admin").decode(),
                              "password": base64.b64encode(b"s3cret").decode()}
    jp.kubectl("create", "secret", "docker-registry", "regcred", "--docker-server=r.example",
               "--docker-username=u", "--docker-password=p", check=True)
    out = jp.kubectl("get", "secrets", check=True).stdout
    assert header(out) == SECRET_COLUMNS
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["creds"][1:3] == ["Opaque", "2"]
    assert rows["regcred"][1:3] == ["kubernetes.io/dockerconfigjson", "1"]
    assert jp.kubectl("get", "secrets", "--field-selector=type=Opaque", "-o", "name",
                      check=True).stdout.split() == ["secret/creds"]

    # stringData is folded into data; required keys per type; immutability
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"}, "immutable": True,
                "stringData": {"token": "abc"}}
    path = tmp_path / "sd.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert jp.kubectl("apply", "-f", str(path), check=True).stdout.strip() == "secret/sd created"
    stored = json.loads(jp.kubectl("get", "secret", "sd", "-o", "json", check=True).stdout)
    assert stored["data"] == {"token": base64.b64encode(b"abc").decode()} and "stringData" not in stored
    result = jp.kubectl("patch", "secret", "sd", "-p", '{"stringData":{"token":"new"}}')
    assert result.returncode == 1
    assert 'The Secret "sd" is invalid: data: Forbidden: field is immutable when `immutable` is set' in result.stderr
    tls = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad-tls"}, "type": "kubernetes.io/tls",
           "data": {}}
    path.write_text(yaml.safe_dump(tls))
    result = jp.kubectl("create", "-f", str(path))
    assert result.returncode == 1
    assert ('The Secret "bad-tls" is invalid: \n* data[tls.crt]: Required value\n* data[tls.key]: Required value'
            in result.stderr)

    immutable_cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"}, "immutable": True,
                    "data": {"a": "1"}}
    path.write_text(yaml.safe_dump(immutable_cm))
    jp.kubectl("apply", "-f", str(path), check=True)
    result = jp.kubectl("patch", "configmap", "frozen", "--type=merge", "-p", '{"data":{"a":"2"}}')
    assert result.returncode == 1
    assert 'The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set' \
        in result.stderr
    bad_key = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "badkey"}, "data": {"a b": "1"}}
    path.write_text(yaml.safe_dump(bad_key))
    result = jp.kubectl("create", "-f", str(path))
    assert result.returncode == 1
    assert ('data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '
            "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')") in result.stderr
    assert jp.kubectl("delete", "configmap", "cfg", check=True).stdout.strip() == 'configmap "cfg" deleted'


def test_serviceaccounts_services_and_endpointslices(jp, tmp_path):
    assert jp.kubectl("create", "serviceaccount", "builder", check=True).stdout.strip() == \
        "serviceaccount/builder created"
    out = jp.kubectl("get", "sa", "builder", check=True).stdout
    assert header(out) == SA_COLUMNS and out.splitlines()[1].split()[:2] == ["builder", "0"]

    assert jp.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", check=True).stdout.strip() == \
        "service/web created"
    result = jp.kubectl("create", "service", "clusterip", "db", "--clusterip=None", check=True)
    assert result.stdout.strip() == "service/db created"
    svc = json.loads(jp.kubectl("get", "svc", "web", "-o", "json", check=True).stdout)
    ip = svc["spec"]["clusterIP"]
    assert ip.startswith("10.") and svc["spec"]["clusterIPs"] == [ip]
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and svc["spec"]["ports"][0]["protocol"] == "TCP"
    out = jp.kubectl("get", "services", check=True).stdout
    assert header(out) == SVC_COLUMNS
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["web"][1:5] == ["ClusterIP", ip, "<none>", "80/TCP"]
    assert rows["db"][1:5] == ["ClusterIP", "None", "<none>", "<none>"]
    assert rows["kubernetes"][1:5] == ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    wide = jp.kubectl("get", "svc", "web", "-o", "wide", check=True).stdout
    assert header(wide)[-1] == "SELECTOR" and wide.splitlines()[1].split()[-1] == "app=web"
    assert "service/web" in jp.kubectl("get", "all", check=True).stdout

    node_port = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                 "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    path = tmp_path / "np.yaml"
    path.write_text(yaml.safe_dump(node_port))
    result = jp.kubectl("apply", "-f", str(path))
    assert result.returncode == 1
    assert 'The Service "np" is invalid: spec.type: Forbidden: jobplane does not open node ports' in result.stderr
    result = jp.kubectl("patch", "svc", "web", "--type=merge", "-p", '{"spec":{"clusterIP":"10.96.0.77"}}')
    assert result.returncode == 1 and "may not change once set" in result.stderr
    patched = jp.kubectl("patch", "svc", "web", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}',
                         check=True)
    assert patched.stdout.strip() == "service/web patched"
    live = json.loads(jp.kubectl("get", "svc", "web", "-o", "json", check=True).stdout)
    assert live["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 9090}]
    assert live["spec"]["clusterIP"] == ip

    out = jp.kubectl("get", "endpointslices", "kubernetes", check=True).stdout
    assert header(out) == EPS_COLUMNS
    assert out.splitlines()[1].split()[:3] == ["kubernetes", "IPv4", jp.url.rsplit(":", 1)[1]]
    jp.kubectl("delete", "svc", "web", check=True)
    # the address is free again: it can be asked for explicitly
    again = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web2"},
             "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}
    path.write_text(yaml.safe_dump(again))
    jp.kubectl("create", "-f", str(path), check=True)
    assert json.loads(jp.kubectl("get", "svc", "web2", "-o", "json", check=True).stdout)["spec"]["clusterIP"] == ip
    explained = jp.kubectl("explain", "endpointslice.endpoints", check=True).stdout
    assert "KIND:       EndpointSlice" in explained and "GROUP:      discovery.k8s.io" in explained
    info = jp.kubectl("cluster-info", check=True).stdout
    assert "Kubernetes control plane" in info and jp.url in info


def test_claims_volumes_storageclasses_and_client(jp, tmp_path):
    out = jp.kubectl("get", "storageclass", check=True).stdout
    assert header(out) == SC_COLUMNS
    assert out.splitlines()[1].split()[:6] == ["local-path", "(default)", "jobplane.io/local-path", "Delete",
                                                "WaitForFirstConsumer", "false"]
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    path = tmp_path / "pvc.yaml"
    path.write_text(yaml.safe_dump(claim))
    assert jp.kubectl("apply", "-f", str(path), check=True).stdout.strip() == \
        "persistentvolumeclaim/data created"
    out = jp.kubectl("get", "pvc", check=True).stdout
    assert header(out) == PVC_COLUMNS
    assert out.splitlines()[1].split()[:4] == ["data", "Pending", "local-path", "<unset>"]
    claim["spec"]["accessModes"] = ["ReadWriteMany"]
    path.write_text(yaml.safe_dump(claim))
    result = jp.kubectl("apply", "-f", str(path))
    assert result.returncode == 1 and "spec: Forbidden: spec is immutable after creation" in result.stderr
    bad = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"}, "spec": {}}
    path.write_text(yaml.safe_dump(bad))
    result = jp.kubectl("create", "-f", str(path))
    assert ("spec.accessModes: Required value: at least 1 access mode is required" in result.stderr
            and "spec.resources[storage]: Required value" in result.stderr)

    from kubernetes import client, watch

    api = client.CoreV1Api(jp.kube_client())
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    rv = api.list_namespaced_config_map("default").metadata.resource_version
    stream = w.stream(api.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5)
    api.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1"),
                                                                    data={"k": "v"}))
    api.patch_namespaced_config_map("w1", "default", {"data": {"k": "v2"}})
    api.delete_namespaced_config_map("w1", "default")
    deadline = time.monotonic() + 10
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED" or time.monotonic() > deadline:
            w.stop()
    assert [s for s in seen if s[1] == "w1"] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    sec = api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="s"),
                                                                  string_data={"a": "b"}))
    assert sec.data == {"a": base64.b64encode(b"b").decode()}
    svc = api.create_namespaced_service("default", client.V1Service(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V1ServiceSpec(selector={"app": "api"}, ports=[client.V1ServicePort(port=80)])))
    assert svc.spec.cluster_ip and svc.spec.ports[0].target_port == 80
    pv = api.create_persistent_volume(client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name="manual"),
        spec=client.V1PersistentVolumeSpec(capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"],
                                           host_path=client.V1HostPathVolumeSource(path=str(tmp_path)))))
    assert pv.spec.persistent_volume_reclaim_policy == "Retain" and pv.status.phase == "Pending"
    discovery = client.DiscoveryV1Api(jp.kube_client())
    slices = discovery.list_namespaced_endpoint_slice("default")
    names = sorted(s.metadata.name for s in slices.items)
    assert names[0].startswith("api-") and names[1:] == ["kubernetes"]  # api's placeholder slice
    storage = client.StorageV1Api(jp.kube_client())
    assert [s.metadata.name for s in storage.list_storage_class().items] == ["local-path"]


def _jwt_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_create_token_is_a_signed_expiring_jwt_the_server_accepts(jp):
    jp.kubectl("create", "serviceaccount", "bot", check=True)
    token = jp.kubectl("create", "token", "bot", "--duration=15m", check=True).stdout.strip()
    header, claims = _jwt_part(token, 0), _jwt_part(token, 1)
    # the algorithm is the signing key's: ES256 for the P-256 key a new data dir gets
    key = serialization.load_pem_private_key((jp.data_dir / "pki" / "sa.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert header == {"alg": "ES256", "kid": satokens.key_id(key.public_key())}
    assert claims["sub"] == "system:serviceaccount:default:bot"
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["exp"] - claims["iat"] == 900 and claims["kubernetes.io"]["namespace"] == "default"
    uid = json.loads(jp.kubectl("get", "sa", "bot", "-o", "json", check=True).stdout)["metadata"]["uid"]
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "bot", "uid": uid}
    who = json.loads(jp.kubectl("--token", token, "auth", "whoami", "-o", "json", check=True).stdout)
    assert who["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"
    assert who["status"]["userInfo"]["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                                                   "system:authenticated"]
    # authenticated, then authorized by RBAC like any user: nothing until a binding grants it
    assert 'User "system:serviceaccount:default:bot" cannot get resource "serviceaccounts"' in \
        jp.kubectl("--token", token, "get", "sa", "bot").stderr
    jp.kubectl("create", "rolebinding", "bot-view", "--clusterrole=view", "--serviceaccount=default:bot",
               check=True)
    assert jp.kubectl("--token", token, "get", "sa", "bot", "-o", "name", check=True).stdout.strip() == \
        "serviceaccount/bot"
    result = jp.kubectl("create", "token", "bot", "--duration=1m")
    assert result.returncode == 1
    assert "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes" \
        in result.stderr
    assert 'serviceaccounts "ghost" not found' in jp.kubectl("create", "token", "ghost").stderr
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "Unauthorized" in jp.kubectl("--token", forged, "get", "sa").stderr
    jp.kubectl("delete", "sa", "bot", check=True)
    assert "Unauthorized" in jp.kubectl("--token", token, "get", "sa").stderr
