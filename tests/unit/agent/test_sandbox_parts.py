"""The pure parts of the pod sandbox: bwrap's command line, /etc/hosts, securityContext,
ConfigMap/Secret/downward API payloads and the atomic writer, Service names."""

import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from jobplane.agent import dns, hosts, projection, security
from jobplane.agent.sandbox import Identity, Mount, SandboxSpec, SandboxSupport, bwrap_argv, enter_argv
from jobplane.agent.spec import ContainerConfigError
from jobplane.agent.volumes import MountError, container_mounts, translate, volume_dirs

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                    "labels": {"a": "1"}, "annotations": {"batch.kubernetes.io/job-completion-index": "3"}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]}}


@pytest.fixture
def outside_tmp():
    """A directory not under /tmp (the sandbox replaces /tmp, so paths there are hidden anyway)."""
    path = Path(tempfile.mkdtemp(prefix="jobplane-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_bwrap_argv_order_and_options(outside_tmp):
    hidden = outside_tmp / "hidden"
    hidden.mkdir()
    secret_file = outside_tmp / "token"
    secret_file.write_text("x")
    spec = SandboxSpec(hostname="h", hosts_file="/d/hosts", hostname_file="/d/hostname", tmp_dir="/d/tmp",
                       mounts=[Mount("/v/b", "/a/b", True), Mount("/v/a", "/a")],
                       hidden=(str(hidden), str(secret_file), "/tmp/under-tmp"), identity=Identity(1000, 0, (5,)))
    argv = bwrap_argv(SandboxSupport("/usr/bin/bwrap"), spec, ["sh", "-c", "x"], "/w")
    text = " ".join(argv)
    assert argv[:4] == ["/usr/bin/bwrap", "--dev-bind", "/", "/"]
    assert "--unshare-pid --unshare-uts --hostname h" in text and "--new-session" in text
    assert f"--tmpfs {hidden}" in text and f"--ro-bind /dev/null {secret_file}" in text
    assert "/tmp/under-tmp" not in text  # /tmp is the pod's own anyway
    assert text.index("--bind /v/a /a") < text.index("--ro-bind /v/b /a/b")  # parents first
    assert text.endswith("--chdir /w -- /usr/bin/setpriv --regid 0 --groups 5 --reuid 1000 -- sh -c x")
    assert "--unshare-user" in bwrap_argv(SandboxSupport("/b", user_namespace=True), spec, ["x"], None)
    assert enter_argv(42, Identity())[:3] == ["/usr/bin/nsenter", "--target", "42"]


def test_hosts_file_and_hostname():
    pod = {"metadata": {"name": "job-0-abcde", "namespace": "default"},
           "spec": {"hostname": "job-0", "subdomain": "svc", "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["foo"]}]}}
    assert hosts.pod_hostname(pod) == "job-0"
    text = hosts.hosts_file(pod, "127.0.0.1", [("127.0.0.1", ["a.b", "a"])], "1.2.3.4 host\n")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "127.0.0.1\tjob-0.svc.default.svc.cluster.local\tjob-0\n" in text
    assert "10.0.0.1\tfoo\n" in text and "127.0.0.1\ta.b a\n" in text and text.endswith("1.2.3.4 host\n")
    long = {"metadata": {"name": "x" * 70 + "-y"}, "spec": {}}
    assert hosts.pod_hostname(long) == "x" * 63


def test_hosts_write_in_place_keeps_the_inode(tmp_path):
    f = tmp_path / "hosts"
    assert hosts.write_in_place(f, "a long first text\n")
    ino = f.stat().st_ino
    assert hosts.write_in_place(f, "short\n") and f.read_text() == "short\n" and f.stat().st_ino == ino
    assert not hosts.write_in_place(f, "short\n")


def test_security_identity():
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"securityContext": {"runAsUser": 1000, "supplementalGroups": [7], "fsGroup": 9}}}
    c = {"name": "c"}
    assert security.identity(pod, c, 0, {0}) == Identity(1000, 0, (7, 9))
    assert security.identity(pod, {"name": "c", "securityContext": {"runAsUser": 5, "runAsGroup": 6}}, 0, {0}) == \
        Identity(5, 6, (7, 9))
    with pytest.raises(ContainerConfigError, match="runs as uid 1000, not root"):
        security.identity(pod, {"name": "c", "securityContext": {"runAsUser": 0}}, 1000, {1000, 7, 9})
    assert security.identity(pod, c, 1000, {1000, 7, 9}) == Identity()  # already who it asks to be
    nonroot = {"metadata": {"name": "p"}, "spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(ContainerConfigError, match="image will run as root"):
        security.identity(nonroot, c, 0, {0})
    with pytest.raises(ContainerConfigError, match="breaks non-root policy"):
        security.identity(nonroot, {"name": "c", "securityContext": {"runAsUser": 0}}, 0, {0})


def test_payloads():
    cm = {"data": {"a": "1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00").decode()}}
    secret = {"data": {"s": base64.b64encode(b"pw").decode()}}
    objects = {("configmaps", "cm"): cm, ("secrets", "sec"): secret, ("token", "", 3600): "TOKEN"}
    vol = {"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path": "dir/x", "mode": 0o600}]}}
    assert projection.payload(vol, POD, objects.get) == {"dir/x": (b"1", 0o600)}
    vol = {"name": "v", "configMap": {"name": "cm"}}
    assert set(projection.payload(vol, POD, objects.get)) == {"a", "b", "bin"}
    with pytest.raises(MountError, match='configmap "nope" not found'):
        projection.payload({"name": "v", "configMap": {"name": "nope"}}, POD, objects.get)
    assert projection.payload({"name": "v", "configMap": {"name": "nope", "optional": True}}, POD, objects.get) == {}
    with pytest.raises(MountError, match="non-existent config key: zz"):
        projection.payload({"name": "v", "configMap": {"name": "cm", "items": [{"key": "zz", "path": "z"}]}},
                           POD, objects.get)
    vol = {"name": "v", "secret": {"secretName": "sec", "defaultMode": 0o400}}
    assert projection.payload(vol, POD, objects.get) == {"s": (b"pw", 0o400)}
    vol = {"name": "v", "downwardAPI": {"items": [
        {"path": "idx", "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}]}}
    assert projection.payload(vol, POD, objects.get) == {"idx": (b"3", 0o644), "labels": (b'a="1"', 0o644),
                                                          "cpu": (b"2", 0o644)}
    vol = {"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "cm", "items": [{"key": "a", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    assert projection.payload(vol, POD, objects.get) == {"token": (b"TOKEN", 0o644), "ca.crt": (b"1", 0o644),
                                                          "namespace": (b"ns", 0o644)}


def test_write_atomic(tmp_path):
    target = tmp_path / "vol"
    assert projection.write_atomic(target, {"a": (b"1", 0o644), "d/b": (b"2", 0o600)})
    data = os.readlink(target / "..data")
    assert data.startswith("..") and (target / data / "a").read_bytes() == b"1"
    assert os.readlink(target / "a") == "..data/a" and (target / "d" / "b").read_bytes() == b"2"
    assert (target / "d" / "b").stat().st_mode & 0o777 == 0o600
    assert not projection.write_atomic(target, {"a": (b"1", 0o644), "d/b": (b"2", 0o600)})
    assert projection.write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_bytes() == b"new" and not os.path.lexists(target / "d")
    assert not (target / data).exists()  # the old timestamped directory is gone
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("..")) == sorted(
        ["..data", os.readlink(target / "..data")])


def test_volume_dirs_and_mounts(tmp_path):
    pod = {"spec": {"volumes": [{"name": "e", "emptyDir": {}},
                                {"name": "h", "hostPath": {"path": str(tmp_path / "hp"), "type": "DirectoryOrCreate"}},
                                {"name": "f", "hostPath": {"path": str(tmp_path / "hp"), "type": "File"}}]}}
    with pytest.raises(MountError) as err:
        volume_dirs(pod, tmp_path / "pod")
    assert err.value.event_message.startswith('MountVolume.SetUp failed for volume "f" : hostPath type check failed')
    pod["spec"]["volumes"].pop()
    vols = volume_dirs(pod, tmp_path / "pod")
    assert vols["e"].stat().st_mode & 0o777 == 0o777 and (tmp_path / "hp").is_dir()
    c = {"volumeMounts": [{"name": "e", "mountPath": "/data/"}, {"name": "e", "mountPath": "/x", "subPathExpr": "$(P)",
                                                                 "readOnly": True}]}
    mounts = container_mounts(c, vols, {"P": "sub"})
    assert mounts == [Mount(str(vols["e"]), "/data"), Mount(str(vols["e"] / "sub"), "/x", True)]
    assert (vols["e"] / "sub").is_dir()
    assert translate("/x/f", mounts) == str(vols["e"] / "sub" / "f") and translate("/other", mounts) == "/other"
    with pytest.raises(MountError):
        container_mounts({"volumeMounts": [{"name": "e", "mountPath": "/y", "subPath": "../up"}]}, vols, {})
    with pytest.raises(MountError, match="not supported"):
        volume_dirs({"spec": {"volumes": [{"name": "n", "nfs": {"server": "x"}}]}}, tmp_path / "pod")


def test_service_and_pod_names():
    services = [{"metadata": {"name": "headless-svc", "namespace": "default"}, "spec": {"clusterIP": "None"}},
                {"metadata": {"name": "api", "namespace": "other"}, "spec": {}}]
    slices = [{"metadata": {"namespace": "default", "labels": {"kubernetes.io/service-name": "headless-svc"}},
               "endpoints": [{"addresses": ["10.0.0.1"], "hostname": "example-job-0", "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.2"], "hostname": "example-job-1", "conditions": {"ready": False}}]},
              {"metadata": {"namespace": "other", "labels": {"kubernetes.io/service-name": "api"}},
               "endpoints": [{"addresses": ["10.0.0.3"]}]}]
    got = dict((names[0], (ip, names)) for ip, names in dns.entries(services, slices, "default"))
    assert got["headless-svc.default.svc.cluster.local"] == (
        "10.0.0.1", ["headless-svc.default.svc.cluster.local", "headless-svc.default.svc", "headless-svc.default",
                     "headless-svc"])
    assert got["example-job-0.headless-svc.default.svc.cluster.local"][1][-1] == "example-job-0.headless-svc"
    assert "example-job-1.headless-svc.default.svc.cluster.local" not in got  # not ready
    assert got["api.other.svc.cluster.local"] == ("10.0.0.3", ["api.other.svc.cluster.local", "api.other.svc",
                                                               "api.other"])


async def test_dns_view_wakes_waiters_at_a_change_or_after_the_timeout():
    """A pod's /etc/hosts follows a change at once (a peer's name may live only briefly)."""
    import asyncio

    from jobplane.clock import FakeClock

    clock = FakeClock()
    view = dns.DnsView(client=None, clock=clock)  # type: ignore[arg-type]
    waiter = asyncio.ensure_future(view.wait_change(view.version, 2.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    view._changed()
    await asyncio.wait_for(waiter, 1.0)  # no clock advance needed
    await asyncio.wait_for(view.wait_change(0, 2.0), 1.0)  # already newer: at once
    idle = asyncio.ensure_future(view.wait_change(view.version, 2.0))
    for _ in range(5):  # the waiter's timer is asleep on the clock
        await asyncio.sleep(0)
    await clock.advance(2.0)
    await asyncio.wait_for(idle, 1.0)


def test_names_linger_after_they_leave_the_cluster():
    """A peer that just finished stays resolvable a while, as cluster DNS answers are cached."""
    a = ("10.0.0.1", ["a.svc.ns.svc.cluster.local", "a.svc"])
    b = ("10.0.0.2", ["b.svc.ns.svc.cluster.local", "b.svc"])
    out, seen, expiry = dns.with_lingering([a, b], {}, now=100.0, linger=30.0)
    assert out == [a, b] and expiry is None
    out, seen, expiry = dns.with_lingering([b], seen, now=110.0, linger=30.0)
    assert out == [b, a] and expiry == 130.0  # current first: a name that moved resolves anew
    out, seen, expiry = dns.with_lingering([b], seen, now=129.0, linger=30.0)
    assert out == [b, a]
    out, seen, expiry = dns.with_lingering([b], seen, now=130.0, linger=30.0)
    assert out == [b] and expiry is None
