"""spec.managedBy (upstream test/e2e/apps/job.go #28) and admission of the newer Job API
fields through real ``kubectl``: upstream's exact messages and HTTP 422."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from jobapi_helpers import indexed_job
from jobs_helpers import NS, Cluster, job_manifest
from kubernetes.client.rest import ApiException


def test_job_managed_by_another_controller_is_left_alone(cluster):
    cl = cluster()
    cl.apply(job_manifest("mb-custom", ["sh", "-c", "exit 0"], managedBy="example.com/custom"))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        job = cl.job("mb-custom")
        assert job.get("status", {}) == {}, job["status"]
        assert not cl.job_pods("mb-custom")
        time.sleep(0.2)
    # The field is immutable.
    bad = cl.kubectl("patch", "job", "mb-custom", "--type=merge", "-p", '{"spec":{"managedBy":"example.com/other"}}')
    assert 'spec.managedBy: Invalid value: "example.com/other": field is immutable' in bad.stderr, bad.stderr
    # The built-in controller's own name means "managed here".
    cl.apply(job_manifest("mb-builtin", ["sh", "-c", "exit 0"], managedBy="kubernetes.io/job-controller"))
    assert cl.wait_complete("mb-builtin")["status"]["succeeded"] == 1


def _never(manifest: dict) -> dict:
    return manifest


def _on_failure(manifest: dict) -> dict:
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    return manifest


FAIL_JOB_42 = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}

INVALID = [
    ("pfp-onfailure", _on_failure(job_manifest("pfp-onfailure", ["true"], podFailurePolicy=FAIL_JOB_42)),
     'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
     "podFailurePolicy is specified"),
    ("pfp-replacement", job_manifest("pfp-replacement", ["true"], podFailurePolicy=FAIL_JOB_42,
                                     podReplacementPolicy="TerminatingOrFailed"),
     'spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: "Failed"'),
    ("pfp-failindex", indexed_job("pfp-failindex", "true", 2, 2, podFailurePolicy={"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}),
     'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set'),
    ("pfp-zero", job_manifest("pfp-zero", ["true"], podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [0]}}]}),
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
    ("pfp-container", job_manifest("pfp-container", ["true"], podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "x", "operator": "In", "values": [1]}}]}),
     'spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "x": must be one of the container '
     "or initContainer names in the pod template"),
    ("bli-required", indexed_job("bli-required", "true", 2, 2, maxFailedIndexes=1),
     "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"),
    ("bli-nonindexed", job_manifest("bli-nonindexed", ["true"], backoffLimitPerIndex=1),
     "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"),
    ("mfi-too-many", indexed_job("mfi-too-many", "true", 2, 2, backoffLimitPerIndex=1, maxFailedIndexes=3),
     "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions"),
    ("sp-count", indexed_job("sp-count", "true", 3, 3, successPolicy={"rules": [{"succeededCount": 5}]}),
     "spec.successPolicy.rules[0].succeededCount: Invalid value: 5: must be less than or equal to 3 "
     "(the number of specified completions)"),
    ("sp-empty", indexed_job("sp-empty", "true", 3, 3, successPolicy={"rules": []}),
     "spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy "
     "is specified"),
    ("mb-bad", job_manifest("mb-bad", ["true"], managedBy="foo"),
     'spec.managedBy: Invalid value: "foo": must be a domain-prefixed path (such as "acme.io/foo")'),
    ("prp-unknown", job_manifest("prp-unknown", ["true"], podReplacementPolicy="Sometimes"),
     'spec.podReplacementPolicy: Unsupported value: "Sometimes": supported values: "Failed", "TerminatingOrFailed"'),
]


def test_invalid_job_api_fields_are_rejected_with_upstream_messages(jp):
    cl = Cluster(jp)
    for name, manifest, message in INVALID:
        out = jp.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest))
        assert out.returncode == 1
        assert out.stderr.strip() == f'The Job "{name}" is invalid: {message}', out.stderr
        # The same request through the Python client: a 422 Invalid Status.
        with pytest.raises(ApiException) as err:
            cl.batch.create_namespaced_job(NS, manifest)
        assert err.value.status == 422
        body = json.loads(err.value.body)
        assert (body["reason"], body["code"]) == ("Invalid", 422)
        assert body["message"] == f'Job.batch "{name}" is invalid: {message}'
    assert not cl.batch.list_namespaced_job(NS).items


def test_policies_are_immutable(jp):
    cl = Cluster(jp)
    cl.apply(indexed_job("immutable", "true", 2, 2, backoffLimitPerIndex=1, podFailurePolicy=FAIL_JOB_42,
                         successPolicy={"rules": [{"succeededCount": 1}]}))
    for patch, field in (('{"spec":{"podFailurePolicy":null}}', "spec.podFailurePolicy"),
                         ('{"spec":{"backoffLimitPerIndex":2}}', "spec.backoffLimitPerIndex"),
                         ('{"spec":{"successPolicy":{"rules":[{"succeededCount":2}]}}}', "spec.successPolicy")):
        out = jp.kubectl("patch", "job", "immutable", "--type=merge", "-p", patch)
        assert out.returncode == 1 and f"{field}: Invalid value: " in out.stderr, out.stderr
        assert out.stderr.rstrip().endswith("field is immutable"), out.stderr
    # maxFailedIndexes and podReplacementPolicy stay mutable.
    jp.kubectl("patch", "job", "immutable", "--type=merge", "-p", '{"spec":{"maxFailedIndexes":1}}', check=True)
    assert cl.job("immutable")["spec"]["maxFailedIndexes"] == 1
