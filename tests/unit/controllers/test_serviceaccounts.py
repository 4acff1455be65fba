"""ServiceAccount controller and root-CA publisher on the fake clock: ``default`` and
``kube-root-ca.crt`` in every active namespace, restored when deleted or edited."""

from asynctools import eventually, running, settle
from ctrlgen_helpers import exists

from jobplane.controllers.serviceaccounts import ROOT_CA, ServiceAccountsController

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


async def test_default_account_and_root_ca_everywhere(client, informers, clock):
    await client.create("namespaces", {"metadata": {"name": "team"}})
    ctrl = ServiceAccountsController(client, clock, informers, CA)
    async with running(ctrl.run()):
        for ns in ("default", "kube-system", "team"):
            await eventually(lambda ns=ns: exists(client, "serviceaccounts", "default", ns))
            await eventually(lambda ns=ns: exists(client, "configmaps", ROOT_CA, ns))
        cm = await client.get("configmaps", ROOT_CA, "team")
        assert cm["data"] == {"ca.crt": CA}
        assert "kube-apiserver" in cm["metadata"]["annotations"]["kubernetes.io/description"]

        await client.delete("serviceaccounts", "default", "team")
        await settle()
        await eventually(lambda: exists(client, "serviceaccounts", "default", "team"))

        cm["data"] = {"ca.crt": "edited"}
        await client.update("configmaps", cm, "team")

        async def restored():
            return (await client.get("configmaps", ROOT_CA, "team"))["data"] == {"ca.crt": CA}

        await eventually(restored)
        await client.create("namespaces", {"metadata": {"name": "later"}})
        await eventually(lambda: exists(client, "serviceaccounts", "default", "later"))


async def test_terminating_namespace_is_left_alone(client, informers, clock):
    await client.create("namespaces", {"metadata": {"name": "gone", "finalizers": ["example.com/hold"]}})
    await client.delete("namespaces", "gone")
    ctrl = ServiceAccountsController(client, clock, informers, CA)
    async with running(ctrl.run()):
        await eventually(lambda: exists(client, "serviceaccounts", "default", "default"))
        await settle()
        assert not await exists(client, "serviceaccounts", "default", "gone")
        assert not await exists(client, "configmaps", ROOT_CA, "gone")
