"""The ServiceAccount admission's pod mutation (api/serviceaccounts.py)."""

import pytest

from jobplane.api.serviceaccounts import MOUNT_PATH, mount_api_access, should_automount, token_volume_source


def pod(**spec):
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a"}], **spec}}


@pytest.mark.parametrize("pod_flag, sa_flag, expected", [
    (None, None, True), (False, None, False), (None, False, False), (True, False, True), (False, True, False),
])
def test_should_automount(pod_flag, sa_flag, expected):
    p = pod() if pod_flag is None else pod(automountServiceAccountToken=pod_flag)
    sa = None if sa_flag is None else {"automountServiceAccountToken": sa_flag}
    assert should_automount(p, sa) is expected


def test_every_container_gets_the_mount_and_the_pod_one_volume():
    p = pod(initContainers=[{"name": "i"}])
    mount_api_access(p, "kube-api-access-abcde")
    mount = {"name": "kube-api-access-abcde", "readOnly": True, "mountPath": MOUNT_PATH}
    assert p["spec"]["initContainers"][0]["volumeMounts"] == [mount]
    assert p["spec"]["containers"][0]["volumeMounts"] == [mount]
    assert p["spec"]["volumes"] == [{"name": "kube-api-access-abcde", "projected": token_volume_source()}]
    sources = token_volume_source()["sources"]
    assert sources[0]["serviceAccountToken"] == {"path": "token", "expirationSeconds": 3607}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"


def test_existing_mount_at_the_path_or_existing_volume_is_kept():
    own = {"name": "mine", "mountPath": MOUNT_PATH}
    p = pod(containers=[{"name": "a", "volumeMounts": [own]}])
    mount_api_access(p, "kube-api-access-abcde")
    assert p["spec"]["containers"][0]["volumeMounts"] == [own] and "volumes" not in p["spec"]
    p = pod(volumes=[{"name": "kube-api-access-zzzzz", "projected": {"sources": []}}])
    mount_api_access(p, "kube-api-access-abcde")
    assert p["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-zzzzz"
    assert len(p["spec"]["volumes"]) == 1
