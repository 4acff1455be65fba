"""Job controller: adoption and release by selector, orphan finalizer cleanup, managedBy,
and exact counts across a controller restart."""

from __future__ import annotations

from jobctl_helpers import job_manifest

from jobplane.controllers.job.pods import TRACKING_FINALIZER


def has_cond(job, ctype):
    return any(c["type"] == ctype and c["status"] == "True" for c in job.get("status", {}).get("conditions") or [])


def finalizers(pod):
    return pod["metadata"].get("finalizers") or []


def orphan_pod(name, labels, finalizers=None):
    meta = {"name": name, "namespace": "default", "labels": labels}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}


async def test_adopts_matching_orphan_and_releases_non_matching(env):
    await env.client.create("pods", orphan_pod("stray", {"job": "ad"}), "default")
    await env.create_job(job_manifest("ad", completions=2, parallelism=2))
    job = await env.job("ad")
    await env.wait_active("ad", 2)

    stray = await env.client.get("pods", "stray", "default")
    assert stray["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert stray["metadata"]["ownerReferences"][0]["controller"] is True
    assert TRACKING_FINALIZER in finalizers(stray)
    # adopted, so only one pod was created
    assert len(await env.pods("ad")) == 2

    # relabel it: the job releases it (ownerRef and finalizer removed) and replaces it
    stray["metadata"]["labels"] = {"job": "other"}
    await env.client.update("pods", stray, "default")

    async def released():
        p = await env.client.get("pods", "stray", "default")
        return not p["metadata"].get("ownerReferences") and TRACKING_FINALIZER not in finalizers(p)
    await env.until(released)
    await env.wait_active("ad", 2)
    assert (await env.job("ad"))["status"].get("failed", 0) == 0


async def test_orphan_finalizer_removed(env):
    await env.client.create("pods", orphan_pod("lost", {"x": "y"}, [TRACKING_FINALIZER]), "default")

    async def cleaned():
        return TRACKING_FINALIZER not in finalizers(await env.client.get("pods", "lost", "default"))
    await env.until(cleaned)


async def test_pod_finalizers_removed_when_job_deleted(env):
    await env.create_job(job_manifest("del", completions=2, parallelism=2))
    await env.wait_active("del", 2)
    await env.client.delete("jobs", "del", "default", propagation_policy="Orphan")

    async def cleaned():
        pods = await env.pods("del")
        return len(pods) == 2 and all(TRACKING_FINALIZER not in finalizers(p) for p in pods)
    await env.until(cleaned)


async def test_external_managed_by_is_left_alone(env):
    await env.create_job(job_manifest("ext", managedBy="example.com/other"))
    await env.step(2)
    assert await env.pods("ext") == []
    assert not (await env.job("ext")).get("status")


async def test_exact_counts_across_controller_restart(env):
    await env.create_job(job_manifest("rs", completions=6, parallelism=3, backoffLimit=10))
    pods = await env.wait_active("rs", 3)
    await env.stop()
    # while the controller is down: two pods succeed, one fails
    await env.succeed(pods[0])
    await env.succeed(pods[1])
    await env.fail(pods[2])
    await env.start()

    async def counted():
        s = (await env.job("rs")).get("status", {})
        return s.get("succeeded") == 2 and s.get("failed") == 1 and not s.get("uncountedTerminatedPods")
    await env.until(counted)
    for p in await env.pods("rs"):
        if p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            assert TRACKING_FINALIZER not in finalizers(p)

    # restart again right after staging: a new instance must not double count
    done = 2
    for _ in range(2000):
        active = await env.active_pods("rs")
        if active and done < 6:
            await env.succeed(active[0])
            done += 1
            if done == 4:
                await env.step(0.05)
                await env.stop()
                await env.start()
        if has_cond(await env.job("rs"), "Complete"):
            break
        await env.step()
    job = await env.job("rs")
    assert has_cond(job, "Complete")
    assert job["status"]["succeeded"] == 6 and job["status"]["failed"] == 1
    pods = await env.pods("rs")
    assert sum(1 for p in pods if p["status"].get("phase") == "Succeeded") == 6
    assert all(TRACKING_FINALIZER not in finalizers(p) for p in pods)


async def test_uncounted_pods_recovered_after_crash(env):
    """A status that staged a UID whose finalizer was already removed (crash between the
    two steps) is completed by the next instance, counting the pod once."""
    await env.create_job(job_manifest("cr", completions=2, parallelism=1))
    pod = (await env.wait_active("cr", 1))[0]
    await env.stop()
    await env.succeed(pod)
    job = await env.job("cr")
    job["status"]["uncountedTerminatedPods"] = {"succeeded": [pod["metadata"]["uid"]]}
    await env.client.update("jobs", job, "default", subresource="status")
    p = await env.client.get("pods", pod["metadata"]["name"], "default")
    p["metadata"]["finalizers"] = []
    await env.client.update("pods", p, "default")
    await env.start()

    async def counted():
        s = (await env.job("cr"))["status"]
        return s.get("succeeded") == 1 and not s.get("uncountedTerminatedPods")
    await env.until(counted)
    await env.wait_active("cr", 1)
    assert len(await env.pods("cr")) == 2


async def test_finalizer_removal_rereads_a_moved_list_without_get(env, monkeypatch):
    """The cached pod's tracking finalizer is no longer where the JSON patch's ``test`` looks
    (another finalizer was added in front of it): the controller reads the pod again with a
    name-selected LIST and patches that, never a GET or PUT, which the job controller's role
    (upstream's: list/watch/create/delete/patch on pods) does not grant."""
    await env.client.create("pods", orphan_pod("moved", {"x": "y"}, [TRACKING_FINALIZER]), "default")
    stale = await env.client.get("pods", "moved", "default")
    await env.client.patch("pods", "moved", {"metadata": {"finalizers": ["example.com/keep", TRACKING_FINALIZER]}},
                           "default", patch_type="application/merge-patch+json")

    async def no_get(*a, **kw):
        raise AssertionError(f"GET {a}")

    monkeypatch.setattr(env.client, "get", no_get)
    monkeypatch.setattr(env.client, "update", no_get)
    await env.ctrl.pod_control.remove_pod_finalizer(stale)
    monkeypatch.undo()
    assert finalizers(await env.client.get("pods", "moved", "default")) == ["example.com/keep"]
