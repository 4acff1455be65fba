"""Scale-out: two ``jobplane server`` processes on one PostgreSQL schema and a standalone
``jobplane agent`` with its own data dir. Jobs run on the agent's node whichever server
they were applied through, ``kubectl logs`` through either server reaches the agent's log
endpoint, and when the leading server dies the other one takes the controllers over."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from jobs_helpers import AgentProcess, wait_for

from pgtest import PG_DSN, fresh_schema, postgres_available

LEASE = ("-n", "kube-system", "get", "lease", "jobplane-controller-manager")



pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not postgres_available(), reason=f"no PostgreSQL at {PG_DSN}")]


@pytest.fixture
def schema_url():
    sep = "&" if "?" in PG_DSN else "?"
    with fresh_schema("jp_e2e") as schema:
        yield f"{PG_DSN}{sep}schema={schema}"


def _agent(data_dir: Path, servers: list, pki: Path, name: str, bootstrap_token: Path | None = None) -> AgentProcess:
    data_dir.mkdir(parents=True)
    urls = [arg for srv in servers for arg in ("--server", srv.url)]
    credential = ["--bootstrap-token-file", str(bootstrap_token)] if bootstrap_token else \
        ["--token-file", str(pki / "token")]
    return AgentProcess([*urls, *credential, "--ca-file", str(pki / "ca.crt"), "--name", name,
                         "--address", "127.0.0.1", "--port", "0", "--node-ip", "127.0.0.1"],
                        data_dir, servers[0].env)


def _holder(srv) -> str:
    out = srv.kubectl(*LEASE, "-o", "jsonpath={.spec.holderIdentity}")
    return out.stdout.strip() if out.returncode == 0 else ""


def test_two_servers_one_store_standalone_agent(tmp_path, schema_url, server_factory):
    started = time.monotonic()
    pki = tmp_path / "pki"
    flags = ("--no-agent", "--database", schema_url, "--pki-dir", str(pki))
    a = server_factory(*flags)
    b = server_factory(*flags)
    agent = None
    try:
        # B reuses A's PKI: the same CA and token, so A's kubeconfig works against B too.
        assert a.kubeconfig.read_text().replace(a.url, b.url) == b.kubeconfig.read_text()
        lease = yaml.safe_load(a.kubectl(*LEASE, "-o", "yaml", check=True).stdout)
        assert lease["spec"]["leaseDurationSeconds"] == 15
        assert lease["spec"]["leaseTransitions"] == 0
        leader = lease["spec"]["holderIdentity"]
        host, _, ident = leader.rpartition("_")
        assert host and len(ident) == 36

        # the agent's own identity: a bootstrap token made through A, exchanged for a certificate
        # that both servers accept (one CA); the controllers' leader signs it
        made = subprocess.run([sys.executable, "-m", "jobplane", "token", "create", "--kubeconfig",
                               str(a.kubeconfig)], env=a.env, capture_output=True, text=True, check=True)
        token_file = tmp_path / "bootstrap-token"
        token_file.write_text(made.stdout)
        agent = _agent(tmp_path / "agent" / "data", [a, b], pki, "scaleout-node", token_file)
        node = wait_for(lambda: a.kubectl("get", "node", "scaleout-node", "-o", "yaml").stdout, 30, 0.2, "node")
        status = yaml.safe_load(node)["status"]
        port = status["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port > 0
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]

        a.kubectl("create", "job", "first", "--image=busybox", "--", "sh", "-c", "echo hello from the agent",
                  check=True)
        a.kubectl("wait", "--for=condition=complete", "job/first", "--timeout=30s", check=True, timeout=40)
        pod = b.kubectl("get", "pods", "-l", "job-name=first", "-o", "jsonpath={.items[0].spec.nodeName}",
                        check=True).stdout
        assert pod == "scaleout-node"
        assert (tmp_path / "agent" / "data" / "pki" / "node-client.crt").exists()
        # B shares no files with the agent: it proxies to the agent's log endpoint.
        assert b.kubectl("logs", "job/first", check=True).stdout == "hello from the agent\n"
        assert b.kubectl("logs", "job/first", "--timestamps", check=True).stdout.split(" ", 1)[1] == \
            "hello from the agent\n"
        assert not (b.data_dir / "pods").exists() or not any((b.data_dir / "pods").iterdir())

        # The leader dies without releasing its lease; B takes over after it expires.
        a.proc.kill()
        a.proc.wait()
        a.proc = None
        killed = time.monotonic()
        b.kubectl("create", "job", "second", "--image=busybox", "--", "sh", "-c", "echo after failover",
                  check=True)
        new_leader = wait_for(lambda: (h := _holder(b)) and h != leader and h, 30, 0.2, "B to take the lease")
        took_over = time.monotonic() - killed
        assert 10 <= took_over <= 25, took_over  # 15 s lease + up to 4.4 s retry
        b.kubectl("wait", "--for=condition=complete", "job/second", "--timeout=30s", check=True, timeout=40)
        assert b.kubectl("logs", "job/second", check=True).stdout == "after failover\n"
        lease = yaml.safe_load(b.kubectl(*LEASE, "-o", "yaml", check=True).stdout)
        assert lease["spec"]["holderIdentity"] == new_leader
        assert lease["spec"]["leaseTransitions"] == 1
        print(f"failover after {took_over:.1f} s; test took {time.monotonic() - started:.1f} s")
    finally:
        if agent is not None:
            agent.stop()
            print("--- agent output ---\n" + "".join(agent.output[-100:]))
