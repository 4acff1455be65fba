"""Kubeconfig discovery order and parsing."""

import base64

import pytest
import yaml

from jobplane.client.http import HttpClient
from jobplane.client.kubeconfig import KubeconfigError, find_kubeconfig, load_kubeconfig


def write(path, server="https://127.0.0.1:6443", ctx="jobplane", ns="default", **user):
    data = {
        "apiVersion": "v1", "kind": "Config", "current-context": ctx,
        "clusters": [{"name": "c", "cluster": {"server": server,
                                               "certificate-authority-data": base64.b64encode(b"PEM").decode()}}],
        "users": [{"name": "u", "user": user or {"token": "secret"}}],
        "contexts": [{"name": ctx, "context": {"cluster": "c", "user": "u", "namespace": ns}},
                     {"name": "other", "context": {"cluster": "c", "user": "u"}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOBPLANE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp_path


def test_order_explicit_env_datadir_home(home, monkeypatch):
    kube_home = write(home / "home" / ".kube" / "config")
    assert find_kubeconfig() == kube_home
    data = write(home / "data" / "kubeconfig")
    assert find_kubeconfig() == data
    env = write(home / "env.yaml")
    monkeypatch.setenv("KUBECONFIG", f"{home / 'missing'}:{env}:{data}")
    assert find_kubeconfig() == env
    explicit = write(home / "explicit.yaml")
    assert find_kubeconfig(explicit) == explicit


def test_nothing_found(home):
    with pytest.raises(KubeconfigError):
        find_kubeconfig()
    with pytest.raises(KubeconfigError):
        find_kubeconfig(home / "nope")


def test_current_and_named_context(home):
    p = write(home / "k", ns="team")
    cfg = load_kubeconfig(p)
    assert (cfg.server, cfg.token, cfg.ca_data, cfg.namespace, cfg.context) == (
        "https://127.0.0.1:6443", "secret", b"PEM", "team", "jobplane")
    assert load_kubeconfig(p, "other").namespace == "default"
    with pytest.raises(KubeconfigError):
        load_kubeconfig(p, "missing")


def test_token_file_and_relative_paths(home):
    (home / "cfg").mkdir()
    (home / "cfg" / "tok").write_text("from-file\n")
    p = write(home / "cfg" / "k", tokenFile="tok", **{"client-certificate": "c.crt", "client-key": "/abs/c.key"})
    cfg = load_kubeconfig(p)
    assert cfg.token == "from-file"
    assert cfg.cert_file == str(home / "cfg" / "c.crt") and cfg.key_file == "/abs/c.key"


def test_http_client_from_kubeconfig(home):
    p = write(home / "k", server="http://127.0.0.1:8080", ns="x")
    c = HttpClient.from_kubeconfig(p)
    assert c.server == "http://127.0.0.1:8080" and c.token == "secret" and c.namespace == "x"
