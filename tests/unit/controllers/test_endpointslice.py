"""EndpointSlice controller on the fake clock: slices follow the pods a Service selects."""

from asynctools import eventually, running

from jobplane.controllers.endpointslice import CONTROLLER, EndpointSliceController


async def make_pod(client, name, *, labels, ready=True, phase="Running", hostname=None, subdomain=None,
                   ports=None, node="n1"):
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": ports or []}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    pod = await client.create("pods", {"metadata": {"name": name, "labels": labels}, "spec": spec}, "default")
    pod["status"] = {"phase": phase, "podIP": "127.0.0.1",
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return await client.update("pods", pod, "default", subresource="status")


async def slices(client, svc):
    out = await client.list("endpointslices", "default", label_selector=f"kubernetes.io/service-name={svc}")
    return out["items"]


async def test_slices_follow_pods(client, informers, clock):
    await client.create("nodes", {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "192.0.2.7"}]}})
    await client.create("services", {"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}, "default")
    ctrl = EndpointSliceController(client, clock, informers)
    async with running(ctrl.run()):
        async def placeholder():
            found = await slices(client, "web")
            return found and found[0]["endpoints"] == [] and found[0]["ports"] == []

        await eventually(placeholder)
        await make_pod(client, "a", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 8080}],
                       hostname="a", subdomain="web")
        await make_pod(client, "b", labels={"app": "web"}, ready=False,
                       ports=[{"name": "http", "containerPort": 8080}])
        await make_pod(client, "done", labels={"app": "web"}, phase="Succeeded")
        await make_pod(client, "other", labels={"app": "db"})

        async def two_endpoints():
            found = await slices(client, "web")
            return len(found) == 1 and len(found[0]["endpoints"]) == 2 and found[0]

        await eventually(two_endpoints)
        eps = (await slices(client, "web"))[0]
        assert eps["metadata"]["name"].startswith("web-")
        assert eps["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                             "endpointslice.kubernetes.io/managed-by": CONTROLLER}
        assert eps["metadata"]["ownerReferences"][0]["kind"] == "Service"
        assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        a, b = eps["endpoints"]
        assert a["addresses"] == ["192.0.2.7"] and a["nodeName"] == "n1" and a["hostname"] == "a"
        assert a["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert b["conditions"] == {"ready": False, "serving": False, "terminating": False} and "hostname" not in b
        assert a["targetRef"]["name"] == "a" and a["targetRef"]["kind"] == "Pod"

        # a pod resolving the named port differently goes to its own slice
        await make_pod(client, "c", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 9090}])
        await eventually(lambda: _count(client, "web", 2))
        await client.delete("pods", "c", "default", grace_period_seconds=0)
        await client.delete("pods", "b", "default", grace_period_seconds=0)
        await eventually(lambda: _count(client, "web", 1))

        async def only_a():
            found = await slices(client, "web")
            return len(found) == 1 and [e["targetRef"]["name"] for e in found[0]["endpoints"]] == ["a"]

        await eventually(only_a)
        await client.delete("pods", "a", "default", grace_period_seconds=30)

        async def terminating():
            found = await slices(client, "web")
            return found and found[0]["endpoints"][0]["conditions"] == {
                "ready": False, "serving": True, "terminating": True}

        await eventually(terminating)


async def _count(client, svc, n):
    return len(await slices(client, svc)) == n


async def test_services_without_selector_are_left_alone(client, informers, clock):
    await client.create("services", {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}}, "default")
    ctrl = EndpointSliceController(client, clock, informers)
    async with running(ctrl.run()):
        await make_pod(client, "a", labels={"app": "web"})
        assert await slices(client, "manual") == []
