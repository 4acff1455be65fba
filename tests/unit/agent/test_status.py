from jobplane.agent.probes import go_duration
from jobplane.agent.status import ContainerRecord, pod_conditions, pod_phase, pod_status, terminated_state
from jobplane.agent.worker import restart_delay


def rec(name, state, init=False, last=None):
    return ContainerRecord(name, "img", init=init, state=state, last_state=last or {})


RUN = {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
OK = {"terminated": terminated_state(0, None, "2024-01-01T00:00:01Z")}
BAD = {"terminated": terminated_state(3, None, "2024-01-01T00:00:01Z")}
WAIT = {"waiting": {"reason": "ContainerCreating"}}


def test_terminated_reasons():
    assert OK["terminated"]["reason"] == "Completed"
    assert BAD["terminated"]["reason"] == "Error"
    assert terminated_state(137, None, "t", reason="OOMKilled")["reason"] == "OOMKilled"


def test_phase():
    assert pod_phase("Never", [], [rec("a", RUN)]) == "Running"
    assert pod_phase("Never", [], [rec("a", OK)]) == "Succeeded"
    assert pod_phase("Never", [], [rec("a", BAD)]) == "Failed"
    assert pod_phase("Never", [], [rec("a", BAD), rec("b", RUN)]) == "Running"
    assert pod_phase("OnFailure", [], [rec("a", BAD)]) == "Running"
    crash = rec("a", {"waiting": {"reason": "CrashLoopBackOff"}}, last=BAD)
    assert pod_phase("OnFailure", [], [crash]) == "Running"
    assert pod_phase("Never", [], [rec("a", WAIT)]) == "Pending"
    assert pod_phase("Never", [rec("i", BAD, init=True)], [rec("a", WAIT)]) == "Failed"
    assert pod_phase("OnFailure", [rec("i", BAD, init=True)], [rec("a", WAIT)]) == "Pending"
    assert pod_phase("Never", [rec("i", RUN, init=True)], [rec("a", WAIT)]) == "Pending"
    assert pod_phase("Always", [], [rec("a", OK)]) == "Running"


def test_conditions_running_and_completed():
    conds = {c["type"]: c for c in pod_conditions("Running", [], [rec("a", RUN)], "T1")}
    assert [conds[t]["status"] for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                         "ContainersReady", "PodScheduled")] == ["True"] * 5
    prev = list(conds.values())
    done = {c["type"]: c for c in pod_conditions("Succeeded", [], [rec("a", OK)], "T2", prev)}
    assert done["Ready"]["status"] == "False" and done["Ready"]["reason"] == "PodCompleted"
    assert done["Ready"]["lastTransitionTime"] == "T2"
    assert done["Initialized"]["lastTransitionTime"] == "T1"  # unchanged status keeps its time
    failed = {c["type"]: c for c in pod_conditions("Failed", [], [rec("a", BAD)], "T3")}
    assert failed["ContainersReady"]["reason"] == "PodFailed"


def test_conditions_init_pending():
    conds = {c["type"]: c for c in pod_conditions("Pending", [rec("i", RUN, init=True)], [rec("a", WAIT)], "T")}
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["reason"] == "ContainersNotInitialized"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [i]"


def test_pod_status_shape():
    pod = {"spec": {"restartPolicy": "Never"}, "status": {}}
    s = pod_status(pod, [], [rec("a", RUN)], "T", start_time="T0", qos="BestEffort")
    assert s["phase"] == "Running"
    assert s["hostIP"] == s["podIP"] == "127.0.0.1"
    cs = s["containerStatuses"][0]
    assert cs["ready"] is True and cs["started"] is True and cs["imageID"] == "" and cs["restartCount"] == 0
    assert s["qosClass"] == "BestEffort" and s["startTime"] == "T0"
    assert "initContainerStatuses" not in s


def test_restart_delay_and_duration_text():
    assert [restart_delay(n, 10, 300) for n in range(0, 9)] == [0, 0, 10, 20, 40, 80, 160, 300, 300]
    assert go_duration(10) == "10s"
    assert go_duration(80) == "1m20s"
    assert go_duration(300) == "5m0s"
