"""PersistentVolumeClaims provisioned on first use by the local-path provisioner and
EndpointSlices following pods, with the node agent running."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_e2e_objects_pods import pod_of, wait_for

CLAIM = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "results"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def writer_job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "w", "image": "busybox", "command": [
            "sh", "-c", 'echo done > "$JOBPLANE_VOLUME_DATA/out.txt"'],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "results"}}]}}}}


def test_claim_bound_on_first_use_and_directory_removed_after_delete(server_factory, tmp_path):
    srv = server_factory()
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(writer_job("early")))
    srv.kubectl("apply", "-f", str(path), check=True)

    def unschedulable():
        pod = pod_of(srv, "early")
        conds = ((pod or {}).get("status") or {}).get("conditions") or []
        return [c for c in conds if c.get("reason") == "Unschedulable"]

    cond = wait_for(unschedulable)[0]
    assert cond["message"].startswith('0/1 nodes are available: persistentvolumeclaim "results" not found.')
    path.write_text(yaml.safe_dump(CLAIM))
    srv.kubectl("apply", "-f", str(path), check=True)
    srv.kubectl("wait", "--for=condition=Complete", "job/early", "--timeout=60s", check=True, timeout=70)

    claim = json.loads(srv.kubectl("get", "pvc", "results", "-o", "json", check=True).stdout)
    assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"
    volume = claim["spec"]["volumeName"]
    assert volume == f"pvc-{claim['metadata']['uid']}"
    row = srv.kubectl("get", "pvc", "results", check=True).stdout.splitlines()[1].split()
    assert row[:6] == ["results", "Bound", volume, "1Gi", "RWO", "local-path"]
    pv = json.loads(srv.kubectl("get", "pv", volume, "-o", "json", check=True).stdout)
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert directory == (srv.data_dir / "volumes" / volume).resolve()
    assert (directory / "out.txt").read_text() == "done\n"
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["claimRef"]["name"] == "results"
    events = srv.kubectl("get", "events", "--field-selector=involvedObject.kind=PersistentVolumeClaim",
                         check=True).stdout
    assert "ProvisioningSucceeded" in events

    srv.kubectl("delete", "job", "early", "--cascade=foreground", check=True)
    srv.kubectl("delete", "pvc", "results", check=True)
    wait_for(lambda: srv.kubectl("get", "pv", volume).returncode == 1)
    assert not directory.exists()


def test_waiting_for_first_consumer(jp, tmp_path):
    path = tmp_path / "claim.yaml"
    path.write_text(yaml.safe_dump(CLAIM))
    jp.kubectl("apply", "-f", str(path), check=True)

    def waiting_event():
        out = jp.kubectl("get", "events", "--field-selector=reason=WaitForFirstConsumer", "-o", "json",
                         check=True).stdout
        return [e["message"] for e in json.loads(out)["items"]]

    assert wait_for(waiting_event) == ["waiting for first consumer to be created before binding"]
    assert jp.kubectl("get", "pvc", "results", "-o", "jsonpath={.status.phase}", check=True).stdout == "Pending"


def test_endpointslices_follow_pods(server_factory, tmp_path):
    srv = server_factory()
    srv.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", check=True)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "labels": {"app": "web"}},
           "spec": {"hostname": "web-1", "subdomain": "web", "containers": [{
               "name": "c", "image": "busybox", "command": ["sleep", "60"]}], "terminationGracePeriodSeconds": 1}}
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    srv.kubectl("apply", "-f", str(path), check=True)

    def ready_endpoint():
        out = srv.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json",
                          check=True).stdout
        items = json.loads(out)["items"]
        eps = items[0].get("endpoints") or [] if items else []
        return eps[0] if eps and eps[0]["conditions"].get("ready") else None

    ep = wait_for(ready_endpoint)
    assert ep["targetRef"]["name"] == "web-1" and ep["hostname"] == "web-1" and ep["nodeName"]
    out = srv.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", check=True).stdout
    assert out.splitlines()[1].split()[1:4] == ["IPv4", "8080", ep["addresses"][0]]
    srv.kubectl("delete", "pod", "web-1", check=True, timeout=60)

    def empty():
        out = srv.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json",
                          check=True).stdout
        items = json.loads(out)["items"]
        return items and not items[0].get("endpoints")

    wait_for(empty)
