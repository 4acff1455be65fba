"""The agent writes the whole conditions list; like the kubelet's status manager
(``mergePodStatus``) it must keep conditions it does not own, e.g. DisruptionTarget set by
the eviction API, which a Job's podFailurePolicy ``onPodConditions`` rule matches."""

from jobplane.agent.status import ContainerRecord, pod_conditions, pod_status, terminated_state

DISRUPTION = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
              "message": "Eviction API: evicting", "lastProbeTime": None,
              "lastTransitionTime": "2024-01-01T00:00:00Z"}


def test_foreign_conditions_kept_first_kubelet_ones_recomputed():
    running = ContainerRecord("c", "img", state={"running": {"startedAt": "2024-01-01T00:00:00Z"}})
    first = pod_conditions("Running", [], [running], "T1")
    previous = [DISRUPTION, *first]
    failed = ContainerRecord("c", "img", state={"terminated": terminated_state(143, None, "T2")})
    conds = pod_conditions("Failed", [], [failed], "T2", previous)
    assert conds[0] == DISRUPTION
    assert [c["type"] for c in conds[1:]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                              "ContainersReady", "PodScheduled"]
    assert {c["type"]: c["status"] for c in conds}["Ready"] == "False"


def test_pod_status_keeps_disruption_target():
    pod = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]},
           "status": {"conditions": [DISRUPTION]}}
    failed = ContainerRecord("c", "img", state={"terminated": terminated_state(143, None, "T2")})
    status = pod_status(pod, [], [failed], "T2", start_time="T0", qos="BestEffort")
    assert status["phase"] == "Failed"
    assert sum(c["type"] == "DisruptionTarget" for c in status["conditions"]) == 1


async def test_status_write_does_not_lose_a_condition_written_meanwhile(inproc, clock, tmp_path):
    """The race: the worker's copy of the pod predates an eviction's DisruptionTarget. Its
    write is pinned to that copy's resourceVersion, so it conflicts, re-reads the pod and
    keeps the condition, as the status manager merging against the current pod does."""
    from jobplane.agent.worker import PodWorker, WorkerConfig

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "n1", "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}
    created = await inproc.create("pods", pod, "default")
    worker = PodWorker(inproc, created, runtime=None, clock=clock,
                       config=WorkerConfig(pods_dir=tmp_path, node_name="n1"))
    await worker.report()
    # Someone else (the eviction API) adds DisruptionTarget; the worker has not seen it.
    current = await inproc.get("pods", "p", "default")
    conds = [*current["status"]["conditions"], DISRUPTION]
    await inproc.patch("pods", "p", {"status": {"conditions": conds}}, "default", subresource="status")
    worker.app[0].state = {"terminated": terminated_state(143, None, "2024-01-01T00:00:01Z")}
    await worker.report(final=True)
    final = await inproc.get("pods", "p", "default")
    assert final["status"]["phase"] == "Failed"
    assert [c for c in final["status"]["conditions"] if c["type"] == "DisruptionTarget"] == [DISRUPTION]
