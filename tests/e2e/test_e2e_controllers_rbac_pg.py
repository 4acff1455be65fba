"""Every controller with its least-privilege identity on PostgreSQL: one server on a fresh
schema (leader election, then the controllers as their service accounts) runs a Job, a
CronJob's Job, a TTL deletion, a Service's EndpointSlice, a local-path claim and a namespace
deletion. The server fixture fails the test if any control-plane request was refused."""

from __future__ import annotations

import json

import pytest
from jobs_helpers import wait_for

from pgtest import PG_DSN, fresh_schema, postgres_available

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not postgres_available(), reason=f"no PostgreSQL at {PG_DSN}")]


def test_controllers_with_their_roles_on_postgres(cluster):
    sep = "&" if "?" in PG_DSN else "?"
    with fresh_schema("jp_rbac") as schema:
        cl = cluster("--database", f"{PG_DSN}{sep}schema={schema}")
        srv = cl.srv
        k = srv.kubectl
        k("create", "namespace", "work", check=True)
        wait_for(lambda: k("-n", "work", "get", "sa", "default").returncode == 0, 20, what="the default account")
        wait_for(lambda: k("-n", "work", "get", "cm", "kube-root-ca.crt").returncode == 0, 20, what="the root CA")
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "work"},
               "spec": {"ttlSecondsAfterFinished": 1, "completions": 2, "completionMode": "Indexed",
                        "template": {"spec": {"restartPolicy": "Never", "containers": [{
                            "name": "c", "image": "busybox", "command": ["sh", "-c", "echo $JOB_COMPLETION_INDEX"]}]}}}}
        k("create", "-f", "-", input=json.dumps(job), check=True)
        k("-n", "work", "create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *", "--", "true",
          check=True)
        k("-n", "work", "create", "job", "from-cron", "--from=cronjob/tick", check=True)
        k("-n", "work", "create", "service", "clusterip", "svc", "--tcp=80", check=True)
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "work"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}
        k("create", "-f", "-", input=json.dumps(claim), check=True)
        user = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "writer", "namespace": "work"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
                    "name": "c", "image": "busybox", "command": ["sh", "-c", "echo hi > /data/f"],
                    "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}}}
        k("create", "-f", "-", input=json.dumps(user), check=True)
        k("-n", "work", "wait", "--for=condition=Complete", "job/writer", "job/from-cron", "--timeout=90s",
          check=True, timeout=100)
        assert k("-n", "work", "get", "pvc", "data", "-o", "jsonpath={.status.phase}").stdout == "Bound"
        wait_for(lambda: k("-n", "work", "get", "job", "once").returncode == 1, 60,
                 what="the finished Job deleted by its TTL")
        wait_for(lambda: k("-n", "work", "get", "endpointslices", "-o", "name").stdout.strip(), 20,
                 what="the Service's EndpointSlice")
        k("delete", "namespace", "work", "--timeout=90s", check=True, timeout=100)
        assert k("get", "pv", "-o", "name").stdout.strip() == ""
