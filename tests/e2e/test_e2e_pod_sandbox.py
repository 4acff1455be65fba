"""Pods in their sandbox, driven with kubectl: the Kubernetes documentation's own manifests
(``tests/e2e/manifests``, copied unchanged from kubernetes/website) give the documented
results, and a pod cannot see the server's data."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from jobs_helpers import pinged_in_order, runtime_pods_dir

from conftest import JobplaneServer
from jobplane.agent import rundir
from jobplane.agent.sandbox import detect

MANIFESTS = Path(__file__).parent / "manifests"
SUPPORT = detect()
pytestmark = pytest.mark.skipif(not SUPPORT.available, reason=f"no sandbox here: {SUPPORT.reason}")


@pytest.fixture(scope="module")
def srv(module_server_factory):
    # module_server_factory's root is under /var/tmp (tests/conftest.py), outside /tmp: the
    # sandbox gives each pod its own /tmp, which would hide it
    return module_server_factory()


def _index_logs(srv: JobplaneServer, namespace: str, job: str) -> list[str]:
    srv.kubectl("wait", "-n", namespace, "--for=condition=complete", f"job/{job}", "--timeout=60s", check=True)
    out = []
    for i in range(5):
        result = srv.kubectl("logs", "-n", namespace, "-l",
                             f"batch.kubernetes.io/job-completion-index={i},job-name={job}", "-c", "worker", check=True)
        out.append(result.stdout.strip())
    return out


def test_indexed_job_example(srv):
    srv.kubectl("create", "namespace", "idx", check=True)
    srv.kubectl("apply", "-n", "idx", "-f", str(MANIFESTS / "indexed-job.yaml"), check=True)
    assert _index_logs(srv, "idx", "indexed-job") == ["oof", "rab", "zab", "xuq", "zyx"]


def test_indexed_job_downward_api_volume_example(srv):
    srv.kubectl("create", "namespace", "vol", check=True)
    srv.kubectl("apply", "-n", "vol", "-f", str(MANIFESTS / "indexed-job-vol.yaml"), check=True)
    assert _index_logs(srv, "vol", "indexed-job") == ["0", "1", "2", "3", "4"]


def test_run_with_args_and_no_access_to_server_data(srv):
    srv.kubectl("run", "hi", "--image=busybox", "--restart=Never", "--", "echo", "hi", check=True)
    data = srv.data_dir
    # One stream (exec 2>&1): stdout and stderr are separate pipes, read in no fixed order.
    script = (f"exec 2>&1; cat {data}/pki/token; cat {data}/pki/ca.key; cat {data}/state.db; ls {data}; "
              f"ls {data}/pods; echo done")
    srv.kubectl("run", "snoop", "--image=busybox", "--restart=Never", "--", "sh", "-c", script, check=True)
    for pod in ("hi", "snoop"):
        srv.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", f"pod/{pod}", "--timeout=30s", check=True)
    assert srv.kubectl("logs", "hi", check=True).stdout == "hi\n"
    snooped = srv.kubectl("logs", "snoop", check=True).stdout
    assert snooped.strip().endswith("done")
    assert srv.token() not in snooped and "PRIVATE KEY" not in snooped and "SQLite" not in snooped
    events = srv.kubectl("events", "--for", "pod/hi", check=True).stdout
    for reason, message in (("Pulled", 'Container image "busybox" is not used'), ("Created", "Created container: hi"),
                            ("Started", "Started container hi")):
        assert any(reason in line and message in line for line in events.splitlines()), events
    node = srv.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.annotations}", check=True).stdout
    assert '"jobplane.dev/pod-sandbox":"bubblewrap"' in node


def test_pods_see_neither_the_runtime_dir_nor_another_pods_token(srv):
    # The pods' tokens and volumes are in the agent's runtime directory (tmpfs: agent/rundir.py),
    # hidden from every pod like the data dir; each pod sees only its own, bound at its mountPath.
    srv.kubectl("run", "holder", "--image=busybox", "--restart=Never", "--", "sleep", "300", check=True)
    srv.kubectl("wait", "--for=condition=Ready", "pod/holder", "--timeout=30s", check=True)
    uid = srv.kubectl("get", "pod", "holder", "-o", "jsonpath={.metadata.uid}", check=True).stdout
    run = runtime_pods_dir(srv.data_dir)
    if rundir.fs_type("/dev/shm", Path("/proc/self/mountinfo").read_text()) == "tmpfs":
        assert run != srv.data_dir / "pods"  # in memory, not on the data disk
        assert not (srv.data_dir / "pods" / uid / "volumes").exists()
    tokens = list((run / uid / "volumes").glob("kube-api-access-*/token"))
    assert len(tokens) == 1 and oct(tokens[0].stat().st_mode & 0o777) == oct(0o644)
    theirs = tokens[0].read_text()
    own = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = (f"exec 2>/dev/null; echo root:$(ls -A {run.parent}); echo pods:$(ls -A {run}); "
              f"echo token:$(cat {tokens[0]} {run}/*/volumes/*/token); echo hosts:$(cat {run}/{uid}/etc-hosts); "
              f"echo own:$(cut -c1-3 {own}/token):$(cat {own}/namespace)")
    srv.kubectl("run", "snoop-rt", "--image=busybox", "--restart=Never", "--", "sh", "-c", script, check=True)
    srv.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/snoop-rt", "--timeout=30s", check=True)
    snooped = srv.kubectl("logs", "snoop-rt", check=True).stdout
    assert snooped == "root:\npods:\ntoken:\nhosts:\nown:eyJ:default\n", snooped
    assert theirs not in snooped
    srv.kubectl("delete", "pod", "holder", "--grace-period=1", "--wait=true", check=True)
    assert not (run / uid).exists()


def test_job_with_sidecar_example(srv):
    # The sidecar (an init container with restartPolicy: Always) starts first, keeps running
    # beside the main container, and is stopped once it is done: the Job completes.
    srv.kubectl("create", "namespace", "side", check=True)
    srv.kubectl("apply", "-n", "side", "-f", str(MANIFESTS / "job-sidecar.yaml"), check=True)
    srv.kubectl("wait", "-n", "side", "--for=condition=complete", "job/myjob", "--timeout=60s", check=True)
    pod = json.loads(srv.kubectl("get", "pods", "-n", "side", "-l", "job-name=myjob", "-o", "json",
                                 check=True).stdout)["items"][0]
    assert pod["status"]["phase"] == "Succeeded"
    side = pod["status"]["initContainerStatuses"][0]
    main = pod["status"]["containerStatuses"][0]
    assert side["name"] == "logshipper" and "terminated" in side["state"]
    assert main["state"]["terminated"]["exitCode"] == 0
    assert side["state"]["terminated"]["startedAt"] <= main["state"]["terminated"]["startedAt"]
    assert side["state"]["terminated"]["finishedAt"] >= main["state"]["terminated"]["finishedAt"]


def test_in_cluster_config_from_a_pod_and_config_map_update(srv):
    # The official client's load_incluster_config() inside a pod: KUBERNETES_SERVICE_HOST/PORT
    # and the credentials the ServiceAccount admission mounts at
    # /var/run/secrets/kubernetes.io/serviceaccount; RBAC lets the account list pods once bound.
    ns = "incl"
    srv.kubectl("create", "namespace", ns, check=True)
    srv.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns, check=True)
    srv.kubectl("create", "rolebinding", "read-pods", "--role=pod-reader", f"--serviceaccount={ns}:default",
                "-n", ns, check=True)
    script = ("from kubernetes import client, config\n"
              "config.load_incluster_config()\n"
              "api = client.CoreV1Api()\n"
              f"print(sorted(p.metadata.name for p in api.list_namespaced_pod('{ns}').items))\n"
              "try:\n"
              "    api.list_namespaced_secret('" + ns + "')\n"
              "except client.ApiException as exc:\n"
              "    print('secrets', exc.status)\n")
    cm_wait = 'cat /cfg/key; until [ "$(cat /cfg/key)" = v2 ]; do sleep 0.1; done; echo; cat /cfg/key'
    manifest = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"key": "v1"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lister"},
         "spec": {"restartPolicy": "Never", "containers": [
             {"name": "main", "image": "python", "command": [sys.executable, "-c", script]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cfg-reader"},
         "spec": {"restartPolicy": "Never", "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                  "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", cm_wait],
                                  "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]}}]}
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest), check=True)
    srv.kubectl("wait", "-n", ns, "--for=jsonpath={.status.phase}=Succeeded", "pod/lister", "--timeout=60s",
                check=True)
    assert srv.kubectl("logs", "-n", ns, "lister", check=True).stdout.split("\n")[:2] == [
        "['cfg-reader', 'lister']", "secrets 403"]
    pod = json.loads(srv.kubectl("get", "-n", ns, "pod/lister", "-o", "json", check=True).stdout)
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert mounts[0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" and mounts[0]["readOnly"]
    # The ConfigMap changes while the reader runs: its mounted file follows.
    srv.kubectl("wait", "-n", ns, "--for=jsonpath={.status.phase}=Running", "pod/cfg-reader", "--timeout=60s",
                check=True)
    srv.kubectl("patch", "-n", ns, "configmap/cfg", "-p", '{"data": {"key": "v2"}}', check=True)
    srv.kubectl("wait", "-n", ns, "--for=jsonpath={.status.phase}=Succeeded", "pod/cfg-reader", "--timeout=60s",
                check=True)
    assert srv.kubectl("logs", "-n", ns, "cfg-reader", check=True).stdout.split() == ["v1", "v2"]


@pytest.mark.skipif(not shutil.which("ping"), reason="the example pings: no ping on this host")
def test_pod_to_pod_communication_example(srv):
    # docs/tasks/job/job-with-pod-to-pod-communication.md: an Indexed Job and a headless
    # Service; each pod pings the others as example-job-N.headless-svc until all answer.
    srv.kubectl("create", "namespace", "p2p", check=True)
    srv.kubectl("apply", "-n", "p2p", "-f", str(MANIFESTS / "job-pod-to-pod.yaml"), check=True)
    done = srv.kubectl("wait", "-n", "p2p", "--for=condition=complete", "job/example-job", "--timeout=60s",
                       timeout=90)  # kubectl's own timeout first, so the diagnostics below run
    if done.returncode != 0:  # say why: the pods, their logs and events, the names they see
        pods = srv.kubectl("get", "pods", "-n", "p2p", "-o", "wide").stdout
        logs = srv.kubectl("logs", "-n", "p2p", "-l", "job-name=example-job", "--tail=5", "--prefix").stdout
        events = srv.kubectl("events", "-n", "p2p").stdout
        slices = srv.kubectl("get", "endpointslices", "-n", "p2p", "-o", "yaml").stdout
        hosts = "".join(f"{p}:\n{p.read_text()}" for p in (srv.data_dir / "pods").glob("*/etc-hosts"))
        pytest.fail(f"{done.stderr}\n{pods}\n{logs}\n{events}\n{slices}\n{hosts}")
    for i in range(3):
        out = srv.kubectl("logs", "-n", "p2p", "-l", f"batch.kubernetes.io/job-completion-index={i}",
                          check=True).stdout
        assert pinged_in_order(out), out
