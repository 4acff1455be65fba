"""EventRecorder: upstream's Event shape and aggregation of repeats."""

from jobplane.client.events import EventRecorder


async def test_event_fields_and_aggregation(inproc, clock):
    job = await inproc.create("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
                                       "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                                           {"name": "c", "image": "busybox"}]}}}}, "default")
    rec = EventRecorder(inproc, "job-controller", clock, host="node1")
    rec.event(job, "Normal", "SuccessfulCreate", "Created pod: pi-abc")
    await rec.flush()
    events = (await inproc.list("events", "default"))["items"]
    assert len(events) == 1
    ev = events[0]
    assert ev["metadata"]["name"] == f"pi.{int(clock.now() * 1e9):x}"
    assert ev["involvedObject"] == {"kind": "Job", "namespace": "default", "name": "pi",
                                    "uid": job["metadata"]["uid"], "apiVersion": "batch/v1",
                                    "resourceVersion": job["metadata"]["resourceVersion"]}
    assert (ev["type"], ev["reason"], ev["message"], ev["count"]) == (
        "Normal", "SuccessfulCreate", "Created pod: pi-abc", 1)
    assert ev["source"] == {"component": "job-controller", "host": "node1"}
    assert ev["reportingComponent"] == "job-controller"
    assert ev["firstTimestamp"] == ev["lastTimestamp"]

    await clock.advance(5)
    rec.event(job, "Normal", "SuccessfulCreate", "Created pod: pi-abc")
    rec.event(job, "Normal", "SuccessfulCreate", "Created pod: pi-abc")
    rec.event(job, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    await rec.flush()
    events = {e["reason"]: e for e in (await inproc.list("events", "default"))["items"]}
    assert len(events) == 2
    again = events["SuccessfulCreate"]
    assert again["count"] == 3
    assert again["firstTimestamp"] == ev["firstTimestamp"] and again["lastTimestamp"] != ev["lastTimestamp"]
    assert events["BackoffLimitExceeded"]["type"] == "Warning"


async def test_same_nanos_do_not_collide_and_cluster_scoped_go_to_default(inproc, clock):
    rec = EventRecorder(inproc, "node-controller", clock)
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "uid": "u1"}}
    rec.event(node, "Normal", "A", "one")
    rec.event(node, "Normal", "B", "two")
    await rec.flush()
    events = (await inproc.list("events", "default"))["items"]
    assert sorted(e["reason"] for e in events) == ["A", "B"]
    assert "host" not in events[0]["source"]
    assert all("namespace" not in e["involvedObject"] for e in events)


async def test_deleted_event_is_recreated(inproc, clock):
    rec = EventRecorder(inproc, "c", clock)
    obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    rec.event(obj, "Normal", "R", "m")
    await rec.flush()
    name = (await inproc.list("events", "default"))["items"][0]["metadata"]["name"]
    await inproc.delete("events", name, "default")
    rec.event(obj, "Normal", "R", "m")
    await rec.flush()
    items = (await inproc.list("events", "default"))["items"]
    assert len(items) == 1 and items[0]["count"] == 1


async def test_close_all_drops_pending_and_ignores_later_events(inproc, clock):
    from jobplane.client import events as events_mod

    rec = EventRecorder(inproc, "test-controller", clock)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    rec.event(pod, "Normal", "First", "written")
    await rec.flush()
    for i in range(50):
        rec.event(pod, "Normal", "Pending", f"never written {i}")
    await events_mod.close_all()
    rec.event(pod, "Normal", "Late", "after close")
    await rec.flush()
    reasons = [e["reason"] for e in (await inproc.list("events", "default"))["items"]]
    assert "First" in reasons and "Late" not in reasons
    assert reasons.count("Pending") < 50
