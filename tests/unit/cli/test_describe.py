"""kubectl describe layout for Job, Pod, CronJob, Namespace and the generic describer."""

from __future__ import annotations

import time

import pytest

from jobplane.api.meta import rfc3339
from jobplane.cli import describe

NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ts(ago: float) -> str:
    return rfc3339(NOW - ago)


UID = "d70e9a4e"
LABELS = {"batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
          "controller-uid": UID, "job-name": "pi"}

JOB = {
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"name": "pi", "namespace": "default", "uid": UID, "labels": LABELS,
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
    "spec": {"parallelism": 1, "completions": 1, "completionMode": "NonIndexed", "suspend": False,
             "backoffLimit": 4, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
             "template": {"metadata": {"labels": LABELS},
                          "spec": {"containers": [{"name": "pi", "image": "perl:5.34.0",
                                                   "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
                                   "restartPolicy": "Never"}}},
    "status": {"startTime": ts(43), "completionTime": ts(13), "succeeded": 1, "ready": 0},
}

EVENTS = [
    {"type": "Normal", "reason": "Completed", "message": "Job completed", "source": {"component": "job-controller"},
     "firstTimestamp": ts(13), "lastTimestamp": ts(13), "count": 1},
    {"type": "Normal", "reason": "SuccessfulCreate", "message": "Created pod: pi-qkr6z",
     "source": {"component": "job-controller"}, "firstTimestamp": ts(43), "lastTimestamp": ts(43), "count": 1},
]


def test_describe_job() -> None:
    text = describe.describe("Job", JOB, EVENTS, NOW)
    assert text == """\
Name:             pi
Namespace:        default
Selector:         batch.kubernetes.io/controller-uid=d70e9a4e
Labels:           batch.kubernetes.io/controller-uid=d70e9a4e
                  batch.kubernetes.io/job-name=pi
                  controller-uid=d70e9a4e
                  job-name=pi
Annotations:      <none>
Parallelism:      1
Completions:      1
Completion Mode:  NonIndexed
Suspend:          false
Backoff Limit:    4
Start Time:       Tue, 14 Nov 2023 22:12:37 +0000
Completed At:     Tue, 14 Nov 2023 22:13:07 +0000
Duration:         30s
Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed
Pod Template:
  Labels:  batch.kubernetes.io/controller-uid=d70e9a4e
           batch.kubernetes.io/job-name=pi
           controller-uid=d70e9a4e
           job-name=pi
  Containers:
   pi:
    Image:      perl:5.34.0
    Port:       <none>
    Host Port:  <none>
    Command:
      perl
      -Mbignum=bpi
      -wle
      print bpi(2000)
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Events:
  Type    Reason            Age   From            Message
  ----    ------            ----  ----            -------
  Normal  SuccessfulCreate  43s   job-controller  Created pod: pi-qkr6z
  Normal  Completed         13s   job-controller  Job completed
"""


def test_describe_job_no_events_and_ready_nil() -> None:
    job = {**JOB, "status": {"active": 2, "failed": 1}, "metadata": {**JOB["metadata"], "ownerReferences": [
        {"kind": "CronJob", "name": "cj", "controller": True}]}}
    text = describe.describe("Job", job, [], NOW)
    assert "Controlled By:    CronJob/cj\n" in text
    assert "Pods Statuses:    2 Active / 0 Succeeded / 1 Failed\n" in text
    assert text.endswith("  Tolerations:     <none>\nEvents:            <none>\n")


def test_event_repeat_interval() -> None:
    ev = dict(EVENTS[1], count=3, firstTimestamp=ts(300), lastTimestamp=ts(10))
    text = describe.describe("Job", JOB, [ev], NOW)
    assert "Normal  SuccessfulCreate  10s (x3 over 5m)  job-controller  Created pod: pi-qkr6z" in text


POD = {
    "metadata": {"name": "pi-qkr6z", "namespace": "default", "labels": {"job-name": "pi"},
                 "ownerReferences": [{"kind": "Job", "name": "pi", "controller": True}]},
    "spec": {"nodeName": "local", "containers": [{
        "name": "pi", "image": "perl", "env": [{"name": "A", "value": "1"},
                                               {"name": "POD", "valueFrom": {"fieldRef": {
                                                   "apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "emptyDir": {}}]},
    "status": {"phase": "Succeeded", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
               "startTime": ts(40), "qosClass": "BestEffort",
               "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
               "containerStatuses": [{"name": "pi", "containerID": "proc://1", "imageID": "", "ready": False,
                                      "restartCount": 0, "state": {"terminated": {
                                          "reason": "Completed", "exitCode": 0, "startedAt": ts(40),
                                          "finishedAt": ts(20)}}}]},
}


def test_describe_pod() -> None:
    text = describe.describe("Pod", POD, [], NOW)
    assert text == (
        'Name:         pi-qkr6z\n'
        'Namespace:    default\n'
        'Node:         local/127.0.0.1\n'
        'Start Time:   Tue, 14 Nov 2023 22:12:40 +0000\n'
        'Labels:       job-name=pi\n'
        'Annotations:  <none>\n'
        'Status:       Succeeded\n'
        'IP:           127.0.0.1\n'
        'IPs:\n'
        '  IP:           127.0.0.1\n'
        'Controlled By:  Job/pi\n'
        'Containers:\n'
        '  pi:\n'
        '    Container ID:   proc://1\n'
        '    Image:          perl\n'
        '    Image ID:       \n'
        '    Port:           <none>\n'
        '    Host Port:      <none>\n'
        '    State:          Terminated\n'
        '      Reason:       Completed\n'
        '      Exit Code:    0\n'
        '      Started:      Tue, 14 Nov 2023 22:12:40 +0000\n'
        '      Finished:     Tue, 14 Nov 2023 22:13:00 +0000\n'
        '    Ready:          False\n'
        '    Restart Count:  0\n'
        '    Environment:\n'
        '      A:    1\n'
        '      POD:  pi-qkr6z (v1:metadata.name)\n'
        '    Mounts:\n'
        '      /data from data (rw)\n'
        'Conditions:\n'
        '  Type           Status\n'
        '  Ready          False \n'
        '  PodScheduled   True \n'
        'Volumes:\n'
        '  data:\n'
        "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)\n"
        '    Medium:      \n'
        '    SizeLimit:   <unset>\n'
        'QoS Class:       BestEffort\n'
        'Node-Selectors:  <none>\n'
        'Tolerations:     <none>\n'
        'Events:          <none>\n'
    )


def test_describe_pod_a_container_kubelet_could_not_locate_shows_go_zero_times() -> None:
    """Its terminated state has no times (kubelet's ContainerStatusUnknown); kubectl prints
    the zero time.Time."""
    import copy

    pod = copy.deepcopy(POD)
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {
        "reason": "ContainerStatusUnknown", "exitCode": 137,
        "message": "The container could not be located when the pod was terminated"}}
    text = describe.describe("Pod", pod, [], NOW)
    assert ('      Exit Code:    137\n'
            '      Started:      Mon, 01 Jan 0001 00:00:00 +0000\n'
            '      Finished:     Mon, 01 Jan 0001 00:00:00 +0000\n') in text


def test_describe_cronjob_and_namespace() -> None:
    cj = {"metadata": {"name": "cj", "namespace": "default"},
          "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                   "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                   "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}}},
          "status": {"active": [{"name": "cj-1"}, {"name": "cj-2"}]}}
    text = describe.describe("CronJob", cj, [], NOW)
    assert text.startswith("Name:                          cj\nNamespace:                     default\n")
    assert "Time Zone" not in text
    for line in ("Suspend:                       False\n", "Successful Job History Limit:  3\n", "Starting Deadline Seconds:     <unset>\n",
                 "Selector:                      <unset>\n", "Parallelism:                   <unset>\n",
                 "Last Schedule Time:  <unset>\n", "Active Jobs:         cj-1, cj-2\n"):
        assert line in text
    ns = {"metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}},
          "status": {"phase": "Active"}}
    assert describe.describe("Namespace", ns, None, NOW) == (
        "Name:         default\nLabels:       kubernetes.io/metadata.name=default\nAnnotations:  <none>\n"
        "Status:       Active\n")


def test_long_annotation_is_wrapped() -> None:
    ns = {"metadata": {"name": "n", "annotations": {"k": "v" * 200, "short": "s"}}, "status": {"phase": "Active"}}
    text = describe.describe("Namespace", ns, None, NOW)
    assert "Annotations:  k:\n                " + "v" * 138 + "...\n              short: s\n" in text


def test_generic_describer_and_smart_label() -> None:
    assert describe.smart_label("apiVersion") == "API Version"
    assert describe.smart_label("holderIdentity") == "Holder Identity"
    assert describe.smart_label("renewTime") == "Renew Time"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "namespace": "kube-system", "uid": "u"},
             "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}
    text = describe.describe("Lease", lease, None, NOW)
    assert text.startswith("Name:         l\nNamespace:    kube-system\nLabels:       <none>\n")
    assert "API Version:  coordination.k8s.io/v1\n" in text
    assert "Spec:\n  Holder Identity:         me\n  Lease Duration Seconds:  15\n" in text


def test_quantities_and_node_resources() -> None:
    assert describe.parse_quantity("250m") == 0.25
    assert describe.parse_quantity("64Mi") == 64 * 2**20
    assert describe.parse_quantity("1k") == 1000
    assert describe.format_quantity("cpu", 1.25) == "1250m"
    assert describe.format_quantity("cpu", 2.0) == "2"
    assert describe.format_quantity("memory", 192 * 2**20) == "192Mi"
    node = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi"}}}
    pod = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ts(5)},
           "spec": {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}
    lease = {"spec": {"holderIdentity": "n", "renewTime": "2023-11-14T22:13:19.500000Z"}}
    text = describe.describe_node(node, [], NOW, lease, [pod])
    assert "Lease:\n  HolderIdentity:  n\n  AcquireTime:     <unset>\n" in text
    assert "Non-terminated Pods:          (1 in total)\n" in text
    assert "  default                     p       500m (25%)    0 (0%)      256Mi (25%)      0 (0%)         5s\n" in text
    assert "  cpu                500m (25%)   0 (0%)\n" in text


def test_describe_http_probe_joins_host_and_port_as_go_does() -> None:
    """kubectl's DescribeProbe builds the http-get URL with net.JoinHostPort (an IPv6 host in
    brackets, a named port as it is), and with the host alone when there is no port."""
    from jobplane.cli.describe.containers import describe_probe

    attrs = "delay=0s timeout=1s period=10s #success=1 #failure=3"
    probe = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    got = describe_probe({**probe, "httpGet": {"host": "fd00::7", "port": 8080, "path": "/healthz", "scheme": "HTTP"}})
    assert got == f"http-get http://[fd00::7]:8080/healthz {attrs}"
    got = describe_probe({**probe, "httpGet": {"port": "web", "path": "/", "scheme": "HTTPS"}})
    assert got == f"http-get https://:web/ {attrs}"
    got = describe_probe({**probe, "httpGet": {"host": "10.1.2.3", "path": "/x", "scheme": "HTTP"}})
    assert got == f"http-get http://10.1.2.3/x {attrs}"
