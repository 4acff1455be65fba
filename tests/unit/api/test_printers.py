"""Server-side Table printing: columns, cells and upstream's pod STATUS rules."""

from __future__ import annotations

import pytest

from jobplane.api import registry
from jobplane.api.meta import rfc3339
from jobplane.api.printers import human_duration, pod_status_cells, to_table

NOW = 1_700_000_000.0


def ts(ago: float) -> str:
    return rfc3339(NOW - ago)


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-2, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"), (1, "1s"), (59, "59s"),
    (119, "119s"), (120, "2m"), (121, "2m1s"), (599, "9m59s"), (600, "10m"), (601, "10m"), (179 * 60, "179m"),
    (180 * 60, "3h"), (3 * 3600 + 60, "3h1m"), (7 * 3600 + 59 * 60, "7h59m"), (8 * 3600, "8h"),
    (47 * 3600 + 3599, "47h"), (48 * 3600, "2d"), (49 * 3600, "2d1h"), (8 * 86400 - 1, "7d23h"),
    (8 * 86400, "8d"), (730 * 86400 - 1, "729d"), (730 * 86400, "2y"), (731 * 86400, "2y1d"),
    (8 * 365 * 86400, "8y"), (20 * 365 * 86400, "20y"),
])
def test_human_duration_boundaries(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def job(**status) -> dict:
    return {
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1", "creationTimestamp": ts(3),
                     "labels": {"job-name": "pi"}, "resourceVersion": "112"},
        "spec": {"completions": 1, "parallelism": 1,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34.0"},
                                                      {"name": "side", "image": "busybox"}]}}},
        "status": status,
    }


def test_job_table_complete_row_and_columns() -> None:
    obj = job(succeeded=1, startTime=ts(3), completionTime=ts(1),
              conditions=[{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}])
    table = to_table(registry.JOBS, [obj], now=NOW, list_metadata={"resourceVersion": "113"})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "113"}
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert table["columnDefinitions"][0]["format"] == "name"
    row = table["rows"][0]
    assert row["cells"] == ["pi", "Complete", "1/1", "2s", "3s", "pi,side", "perl:5.34.0,busybox",
                            "batch.kubernetes.io/controller-uid=u1"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}


@pytest.mark.parametrize("conditions,deleting,expected", [
    ([{"type": "Failed", "status": "True"}], False, "Failed"),
    ([{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "True"}], False, "Complete"),
    ([], True, "Terminating"),
    ([{"type": "Failed", "status": "True"}], True, "Failed"),
    ([{"type": "Suspended", "status": "True"}], False, "Suspended"),
    ([{"type": "FailureTarget", "status": "True"}], False, "FailureTarget"),
    ([{"type": "SuccessCriteriaMet", "status": "True"}], False, "Running"),
    ([{"type": "Complete", "status": "False"}], False, "Running"),
])
def test_job_status_precedence(conditions, deleting, expected) -> None:
    obj = job(conditions=conditions)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ts(1)
    assert to_table(registry.JOBS, [obj], now=NOW)["rows"][0]["cells"][1] == expected


def test_job_completions_and_duration_variants() -> None:
    obj = job(succeeded=2, startTime=ts(100))
    del obj["spec"]["completions"]
    obj["spec"]["parallelism"] = 3
    cells = to_table(registry.JOBS, [obj], now=NOW)["rows"][0]["cells"]
    assert cells[2] == "2/1 of 3"
    assert cells[3] == "100s"  # still running: now - start
    obj["spec"]["parallelism"] = 1
    assert to_table(registry.JOBS, [obj], now=NOW)["rows"][0]["cells"][2] == "2/1"
    no_start = job()
    assert to_table(registry.JOBS, [no_start], now=NOW)["rows"][0]["cells"][3] == ""


def test_include_object_modes_and_no_definitions() -> None:
    obj = job()
    full = to_table(registry.JOBS, [obj], now=NOW, include_object="Object", with_definitions=False)
    assert full["rows"][0]["object"] is obj
    assert full["columnDefinitions"] == []
    none = to_table(registry.JOBS, [obj], now=NOW, include_object="None")
    assert "object" not in none["rows"][0]


def pod(phase="Running", container_statuses=(), init_statuses=(), init_containers=(), conditions=(),
        containers=("c",), **extra_status) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ts(30)},
        "spec": {"containers": [{"name": n} for n in containers], "initContainers": list(init_containers),
                 "nodeName": "local"},
        "status": {"phase": phase, "containerStatuses": list(container_statuses),
                   "initContainerStatuses": list(init_statuses), "conditions": list(conditions), **extra_status},
    }


def running(name="c", ready=True, restarts=0, **kw) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ts(20)}}, **kw}


def terminated(name="c", code=0, reason="", signal=0, restarts=0, **kw) -> dict:
    term = {"exitCode": code, "startedAt": ts(20), "finishedAt": ts(10)}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"terminated": term}, **kw}


def waiting(name="c", reason="ContainerCreating", restarts=0, **kw) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}, **kw}


@pytest.mark.parametrize("obj,expected", [
    (pod("Pending"), ("0/1", "Pending", "0")),
    (pod("Pending", [waiting()]), ("0/1", "ContainerCreating", "0")),
    (pod("Running", [running()]), ("1/1", "Running", "0")),
    (pod("Succeeded", [terminated(reason="Completed")]), ("0/1", "Completed", "0")),
    (pod("Failed", [terminated(code=1, reason="Error")]), ("0/1", "Error", "0")),
    (pod("Failed", [terminated(code=3)]), ("0/1", "ExitCode:3", "0")),
    (pod("Failed", [terminated(code=137, signal=9)]), ("0/1", "Signal:9", "0")),
    (pod("Failed", reason="Evicted"), ("0/1", "Evicted", "0")),
    (pod("Running", [waiting(reason="CrashLoopBackOff", restarts=3,
                             lastState={"terminated": {"exitCode": 1, "finishedAt": ts(65)}})]),
     ("0/1", "CrashLoopBackOff", "3 (65s ago)")),
    (pod("Pending", [waiting(reason="PodInitializing")], [terminated("i1", code=0)] + [running("i2", ready=False)],
         init_containers=[{"name": "i1"}, {"name": "i2"}, {"name": "i3"}]),
     ("0/1", "Init:1/3", "0")),
    (pod("Pending", [], [terminated("i1", code=2)], init_containers=[{"name": "i1"}]),
     ("0/1", "Init:ExitCode:2", "0")),
    (pod("Pending", [], [terminated("i1", code=1, reason="Error")], init_containers=[{"name": "i1"}]),
     ("0/1", "Init:Error", "0")),
    (pod("Pending", [], [terminated("i1", code=1, signal=15)], init_containers=[{"name": "i1"}]),
     ("0/1", "Init:Signal:15", "0")),
    (pod("Pending", [], [waiting("i1", reason="CrashLoopBackOff", restarts=2)], init_containers=[{"name": "i1"}]),
     ("0/1", "Init:CrashLoopBackOff", "2")),
    # a finished container next to a running one shows Running (pod Ready) or NotReady
    (pod("Running", [running("a"), terminated("b", reason="Completed")], containers=("a", "b"),
         conditions=[{"type": "Ready", "status": "True"}]), ("1/2", "Running", "0")),
    (pod("Running", [running("a"), terminated("b", reason="Completed")], containers=("a", "b")),
     ("1/2", "NotReady", "0")),
    (pod("Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     ("0/1", "SchedulingGated", "0")),
])
def test_pod_status_cells(obj, expected) -> None:
    assert pod_status_cells(obj, NOW) == expected


def test_pod_terminating_only_when_not_terminal() -> None:
    p = pod("Running", [running()])
    p["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status_cells(p, NOW)[1] == "Terminating"
    done = pod("Succeeded", [terminated(reason="Completed")])
    done["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status_cells(done, NOW)[1] == "Completed"
    lost = pod("Running", [running()], reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = ts(1)
    assert pod_status_cells(lost, NOW)[1] == "Unknown"


def test_restartable_init_container_counts_in_ready() -> None:
    p = pod("Running", [running()], [running("sidecar", started=True)],
            init_containers=[{"name": "sidecar", "restartPolicy": "Always"}],
            conditions=[{"type": "Initialized", "status": "True"}])
    assert pod_status_cells(p, NOW) == ("2/2", "Running", "0")


def test_pod_row_wide_cells_and_conditions() -> None:
    p = pod("Succeeded", [terminated(reason="Completed")], podIPs=[{"ip": "127.0.0.1"}])
    p["spec"]["readinessGates"] = [{"conditionType": "x"}, {"conditionType": "y"}]
    p["status"]["conditions"] = [{"type": "x", "status": "True"}]
    table = to_table(registry.PODS, [p], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    row = table["rows"][0]
    assert row["cells"] == ["p", "0/1", "Completed", "0", "30s", "127.0.0.1", "local", "<none>", "1/2"]
    assert row["conditions"][0]["type"] == "Completed"
    bare = pod("Pending")
    del bare["spec"]["nodeName"]
    assert to_table(registry.PODS, [bare], now=NOW)["rows"][0]["cells"][5:] == ["<none>"] * 4


def test_cronjob_row() -> None:
    cj = {"metadata": {"name": "cj", "creationTimestamp": ts(600)},
          "spec": {"schedule": "*/1 * * * *", "suspend": False,
                   "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}}},
          "status": {"active": [{"name": "cj-1"}], "lastScheduleTime": ts(30)}}
    table = to_table(registry.CRONJOBS, [cj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]][:7] == [
        "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert table["rows"][0]["cells"] == ["cj", "*/1 * * * *", "<none>", "False", 1, "30s", "10m", "c", "b",
                                         "<none>"]
    cj["spec"].pop("suspend")
    cj["spec"]["timeZone"] = "Etc/UTC"
    cj["status"] = {}
    cells = to_table(registry.CRONJOBS, [cj], now=NOW)["rows"][0]["cells"]
    assert cells[2:6] == ["Etc/UTC", "<unset>", 0, "<none>"]


def test_namespace_node_lease_rows() -> None:
    ns = {"metadata": {"name": "default", "creationTimestamp": ts(7200)}, "status": {"phase": "Active"}}
    assert to_table(registry.NAMESPACES, [ns], now=NOW)["rows"][0]["cells"] == ["default", "Active", "120m"]
    node = {"metadata": {"name": "n1", "creationTimestamp": ts(5),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Linux"}}}
    assert to_table(registry.NODES, [node], now=NOW)["rows"][0]["cells"] == [
        "n1", "NotReady,SchedulingDisabled", "control-plane,worker", "5s", "v1.32.0", "10.0.0.1", "<none>",
        "Linux", "<unknown>", "<unknown>"]
    node["status"]["conditions"] = []
    assert to_table(registry.NODES, [node], now=NOW)["rows"][0]["cells"][1] == "Unknown,SchedulingDisabled"
    lease = {"metadata": {"name": "l", "creationTimestamp": ts(1)}, "spec": {"holderIdentity": "me"}}
    assert to_table(registry.LEASES, [lease], now=NOW)["rows"][0]["cells"] == ["l", "me", "1s"]


def test_event_row_core_and_events_v1() -> None:
    ev = {"metadata": {"name": "pi.1", "namespace": "default"}, "type": "Normal", "reason": "SuccessfulCreate",
          "message": " Created pod: pi-x \n", "involvedObject": {"kind": "Job", "name": "pi"},
          "source": {"component": "job-controller"}, "firstTimestamp": ts(100), "lastTimestamp": ts(10),
          "count": 2}
    table = to_table(registry.EVENTS, [ev], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]
    assert table["rows"][0]["cells"] == ["10s", "Normal", "SuccessfulCreate", "job/pi", "", "job-controller",
                                         "Created pod: pi-x", "100s", 2, "pi.1"]
    v1 = {"metadata": {"name": "e"}, "type": "Warning", "reason": "R", "note": "n",
          "regarding": {"kind": "Pod", "name": "p"}, "eventTime": "2023-11-14T22:13:00.000000Z",
          "reportingController": "ctl", "reportingInstance": "host"}
    cells = to_table(registry.EVENTS_V1, [v1], now=NOW)["rows"][0]["cells"]
    assert cells[1:7] == ["Warning", "R", "pod/p", "", "ctl, host", "n"]
    assert cells[0] == cells[7] and cells[8] == 1


def test_unknown_kind_default_table() -> None:
    info = registry.ResourceInfo("x.io", "v1", "Widget", "widgets", "widget", True)
    table = to_table(info, [{"metadata": {"name": "w", "creationTimestamp": "2024-01-01T00:00:00Z"}}], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["w", "2024-01-01T00:00:00Z"]


@pytest.mark.parametrize("include", ["Metadata", "Object", "None"])
def test_encoded_rows_serialise_as_the_plain_table(include: str) -> None:
    """``encode_objects`` (the HTTP list path, objects decoded one at a time from a generator)
    gives the same JSON as the dict rows."""
    import orjson

    objs = [job(succeeded=1), job(active=1)]
    objs[1]["metadata"]["name"] = "second"
    plain = to_table(registry.JOBS, objs, now=NOW, include_object=include)
    encoded = to_table(registry.JOBS, (o for o in objs), now=NOW, include_object=include, encode_objects=True)
    assert orjson.loads(orjson.dumps(encoded)) == orjson.loads(orjson.dumps(plain))
    assert len(encoded["rows"]) == 2
