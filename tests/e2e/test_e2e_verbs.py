"""The kubectl verbs of issue 13 against one real server (with its node agent): unknown
kinds, server-side apply, exec/cp/attach/port-forward, debug, top."""

from __future__ import annotations

import pytest

from conftest import JobplaneServer

CRONJOB_V1BETA1 = """\
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: old}
spec:
  schedule: "* * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = JobplaneServer(tmp_path_factory.mktemp("verbs"))
    server.start()
    yield server
    server.stop()
    print("--- server output ---\n" + "".join(server.output[-200:]))


def test_unserved_version_says_no_matches_for_kind(srv, tmp_path):
    path = tmp_path / "cj.yaml"
    path.write_text(CRONJOB_V1BETA1)
    for extra in ((), ("--validate=false",), ("--validate=strict",)):
        out = srv.kubectl("apply", "-f", str(path), *extra)
        assert out.returncode != 0
        assert 'no matches for kind "CronJob" in version "batch/v1beta1"' in out.stderr, out.stderr
        assert "error validating" not in out.stderr
