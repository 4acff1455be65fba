"""Helpers shared by the generic-controller tests."""

from asynctools import eventually, running, settle  # noqa: F401 - re-exported for the tests


async def make_job(client, name, *, ns="default", ttl=None, finished_at=None, ctype="Complete", **meta):

    spec = {"template": {"metadata": {}, "spec": {"restartPolicy": "Never",
                                                  "containers": [{"name": "c", "image": "busybox"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    job = await client.create("jobs", {"apiVersion": "batch/v1", "kind": "Job",
                                       "metadata": {"name": name, **meta}, "spec": spec}, ns)
    if finished_at is not None:
        job["status"] = finished_status(ctype, finished_at)
        job = await client.update("jobs", job, ns, subresource="status")
    return job


def finished_status(ctype, finished_at):
    """A status the apiserver's Job status validation accepts for a finished Job."""
    from jobplane.api.meta import rfc3339

    at = rfc3339(finished_at)
    target = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
    status = {"startTime": rfc3339(finished_at - 5), "conditions": [
        {"type": target, "status": "True", "lastTransitionTime": at, "lastProbeTime": at},
        {"type": ctype, "status": "True", "lastTransitionTime": at, "lastProbeTime": at}]}
    if ctype == "Complete":
        status.update(succeeded=1, completionTime=at)
    else:
        status.update(failed=1)
    return status


async def make_pod(client, name, *, ns="default", owners=(), block=True, **meta):
    refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "controller": i == 0, "blockOwnerDeletion": block}
            for i, o in enumerate(owners)]
    md = {"name": name, **meta}
    if refs:
        md["ownerReferences"] = refs
    return await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": md,
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, ns)


async def exists(client, resource, name, ns="default"):
    from jobplane.api.errors import StatusError

    try:
        await client.get(resource, name, ns)
        return True
    except StatusError as exc:
        if exc.code == 404:
            return False
        raise
