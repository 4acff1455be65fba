"""Job admission: defaults, selector generation, validation messages, updates, status."""

from __future__ import annotations

from _admission_helpers import clone, created, invalid_message, job

from jobplane.api import admission
from jobplane.api.registry import JOBS

UID = "uid-1"


def test_defaults_and_generated_selector() -> None:
    j = created(JOBS, job())
    spec = j["spec"]
    assert spec["completions"] == 1 and spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False and spec["manualSelector"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels == {"job-name": "pi", "batch.kubernetes.io/job-name": "pi",
                      "controller-uid": UID, "batch.kubernetes.io/controller-uid": UID}
    # Job labels are a copy of the template labels (not the same dict).
    assert j["metadata"]["labels"] == labels and j["metadata"]["labels"] is not labels
    assert j["status"] == {} and j["metadata"]["generation"] == 1
    pod_spec = spec["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["schedulerName"] == "default-scheduler"
    assert pod_spec["securityContext"] == {}
    c = pod_spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"


def test_parallelism_only_leaves_completions_nil() -> None:
    j = created(JOBS, job(parallelism=3))
    assert "completions" not in j["spec"] and j["spec"]["parallelism"] == 3


def test_backoff_limit_per_index_defaults_backoff_to_maxint() -> None:
    j = created(JOBS, job(completionMode="Indexed", completions=3, backoffLimitPerIndex=1))
    assert j["spec"]["backoffLimit"] == 2147483647


def test_pod_failure_policy_defaults() -> None:
    j = created(JOBS, job(podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}))
    assert j["spec"]["podReplacementPolicy"] == "Failed"
    assert j["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_user_template_labels_are_kept() -> None:
    j = created(JOBS, job(template_labels={"app": "x"}))
    assert j["metadata"]["labels"]["app"] == "x"
    assert j["spec"]["template"]["metadata"]["labels"]["app"] == "x"


def test_missing_restart_policy_and_containers() -> None:
    body = job("bad", restart=None)
    body["spec"]["template"]["spec"] = {}
    msg = invalid_message(admission.admit_create, JOBS, body)
    # Upstream order: ValidatePodTemplateSpec runs before the Job restartPolicy check.
    assert msg == ('Job.batch "bad" is invalid: [spec.template.spec.containers: Required value, '
                   'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"]')


def test_restart_policy_always_is_required_error() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(restart="Always"))
    assert msg == ('Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Required value: '
                   'valid values: "OnFailure", "Never"')


def test_restart_policy_unknown() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(restart="Sometimes"))
    assert msg == ('Job.batch "pi" is invalid: [spec.template.spec.restartPolicy: Unsupported value: "Sometimes": '
                   'supported values: "Always", "OnFailure", "Never", spec.template.spec.restartPolicy: '
                   'Unsupported value: "Sometimes": supported values: "OnFailure", "Never"]')


def test_long_name_fails_through_label_value() -> None:
    name = "a" * 64
    msg = invalid_message(admission.admit_create, JOBS, job(name))
    assert msg == (f'Job.batch "{name}" is invalid: spec.template.labels: Invalid value: "{name}": '
                   "must be no more than 63 characters")


def test_long_name_with_template_labels_also_fails_job_labels() -> None:
    name = "a" * 64
    msg = invalid_message(admission.admit_create, JOBS, job(name, template_labels={"x": "y"}))
    assert msg.startswith(f'Job.batch "{name}" is invalid: [metadata.labels: Invalid value: "{name}"')


def test_dns_label_warning() -> None:
    warnings = admission.admit_create(JOBS, job("a.b"))
    assert warnings == [
        "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; "
        "a DNS label is recommended: [a lowercase RFC 1123 label must consist of lower case alphanumeric "
        "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
        "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')]"]


def test_indexed_large_warning() -> None:
    warnings = admission.admit_create(JOBS, job(completionMode="Indexed", completions=200000, parallelism=20000))
    assert warnings == ["spec: In Indexed Jobs with a number of completions higher than 10^5 and a parallelism "
                        "higher than 10^4, Kubernetes might not be able to track completedIndexes when a big "
                        "number of indexes fail"]


def test_indexed_name_check() -> None:
    name = "a" * 61
    msg = invalid_message(admission.admit_create, JOBS, job(name, completionMode="Indexed", completions=100))
    assert msg == (f'Job.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                   f"will not able to create pod with invalid DNS label: {name}-99")


def test_spec_field_rules() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(parallelism=-1, backoffLimit=-2, maxFailedIndexes=2,
                                                            managedBy="foo", completionMode="Weird"))
    assert msg == (
        'Job.batch "pi" is invalid: [spec.parallelism: Invalid value: -1: must be greater than or equal to 0, '
        "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0, "
        "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified, "
        'spec.managedBy: Invalid value: "foo": must be a domain-prefixed path (such as "acme.io/foo"), '
        'spec.completionMode: Unsupported value: "Weird": supported values: "NonIndexed", "Indexed"]')


def test_managed_by_too_long() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(managedBy="example.com/" + "x" * 60))
    assert msg == 'Job.batch "pi" is invalid: spec.managedBy: Too long: may not be longer than 63'


def test_indexed_requires_completions_and_per_index_rules() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(completionMode="Indexed", parallelism=2))
    assert msg == 'Job.batch "pi" is invalid: spec.completions: Required value: when completion mode is Indexed'
    msg = invalid_message(admission.admit_create, JOBS, job(backoffLimitPerIndex=1))
    assert msg == ('Job.batch "pi" is invalid: spec.backoffLimitPerIndex: Invalid value: 1: '
                   "requires indexed completion mode")
    msg = invalid_message(admission.admit_create, JOBS, job(completionMode="Indexed", completions=3,
                                                            backoffLimitPerIndex=1, maxFailedIndexes=4))
    assert msg == ('Job.batch "pi" is invalid: spec.maxFailedIndexes: Invalid value: 4: '
                   "must be less than or equal to completions")


def test_pod_failure_policy_rules() -> None:
    body = job(podReplacementPolicy="TerminatingOrFailed", podFailurePolicy={"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [0, 3, 2, 2]}},
        {"action": ""},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [1]},
         "onPodConditions": [{"type": "X", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "", "containerName": "nope", "values": []}},
    ]})
    msg = invalid_message(admission.admit_create, JOBS, body)
    assert msg == (
        'Job.batch "pi" is invalid: ['
        'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set, '
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator, "
        "spec.podFailurePolicy.rules[0].onExitCodes.values[3]: Duplicate value: 2, "
        "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{0, 3, 2, 2}: must be ordered, "
        'spec.podFailurePolicy.rules[1].action: Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"], '
        "spec.podFailurePolicy.rules[1]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required, "
        "spec.podFailurePolicy.rules[2]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported, "
        'spec.podFailurePolicy.rules[3].onExitCodes.operator: Required value: valid values: ["In" "NotIn"], '
        'spec.podFailurePolicy.rules[3].onExitCodes.containerName: Invalid value: "nope": must be one of the '
        "container or initContainer names in the pod template, "
        "spec.podFailurePolicy.rules[3].onExitCodes.values: Invalid value: []int32{}: at least one value is required, "
        'spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: "Failed"]')


def test_pod_failure_policy_requires_never() -> None:
    body = job(restart="OnFailure", podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]})
    msg = invalid_message(admission.admit_create, JOBS, body)
    assert msg == ('Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Invalid value: "OnFailure": '
                   'only "Never" is supported when podFailurePolicy is specified')


def test_too_many_pod_failure_policy_rules() -> None:
    rule = {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}}
    msg = invalid_message(admission.admit_create, JOBS, job(podFailurePolicy={"rules": [rule] * 21}))
    assert msg == 'Job.batch "pi" is invalid: spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items'


def test_success_policy_rules() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(successPolicy={"rules": [{"succeededCount": 1}]}))
    assert msg == ('Job.batch "pi" is invalid: spec.successPolicy: Invalid value: batch.SuccessPolicy{Rules:'
                   "[]batch.SuccessPolicyRule{batch.SuccessPolicyRule{SucceededIndexes:(*string)(nil), "
                   "SucceededCount:1}}}: requires indexed completion mode")
    indexed = {"completionMode": "Indexed", "completions": 5}
    msg = invalid_message(admission.admit_create, JOBS, job(successPolicy={"rules": []}, **indexed))
    assert msg == ('Job.batch "pi" is invalid: spec.successPolicy.rules: Required value: at least one rules must '
                   "be specified when the successPolicy is specified")
    msg = invalid_message(admission.admit_create, JOBS, job(successPolicy={"rules": [{}]}, **indexed))
    assert msg == ('Job.batch "pi" is invalid: spec.successPolicy.rules[0]: Required value: at least one of '
                   "succeededCount or succeededIndexes must be specified")
    msg = invalid_message(admission.admit_create, JOBS,
                          job(successPolicy={"rules": [{"succeededIndexes": "0-2", "succeededCount": 4}]}, **indexed))
    assert msg == ('Job.batch "pi" is invalid: spec.successPolicy.rules[0].succeededCount: Invalid value: 4: '
                   "must be less than or equal to 3 (the number of indexes in the specified succeededIndexes field)")
    msg = invalid_message(admission.admit_create, JOBS,
                          job(successPolicy={"rules": [{"succeededIndexes": "7"}]}, **indexed))
    assert msg == ('Job.batch "pi" is invalid: spec.successPolicy.rules[0].succeededIndexes: Invalid value: "7": '
                   'error parsing succeededIndexes: too large index: "7"')
    created(JOBS, job(successPolicy={"rules": [{"succeededIndexes": "0,2-4", "succeededCount": 2}]}, **indexed))


def test_manual_selector_must_match_template() -> None:
    body = job(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    msg = invalid_message(admission.admit_create, JOBS, body)
    assert msg == ('Job.batch "pi" is invalid: spec.template.metadata.labels: Invalid value: '
                   "map[string]string(nil): `selector` does not match template `labels`")
    ok = created(JOBS, job(manualSelector=True, selector={"matchLabels": {"a": "b"}}, template_labels={"a": "b"}))
    assert "controller-uid" not in ok["spec"]["template"]["metadata"]["labels"]


def test_manual_selector_false_requires_nil_selector_mode() -> None:
    body = job(manualSelector=True)
    msg = invalid_message(admission.admit_create, JOBS, body)
    assert msg == 'Job.batch "pi" is invalid: spec.selector: Required value'


def test_user_controller_uid_label_conflict() -> None:
    msg = invalid_message(admission.admit_create, JOBS, job(template_labels={"controller-uid": "zzz"}))
    assert msg == (
        'Job.batch "pi" is invalid: spec.template.metadata.labels[controller-uid]: Invalid value: '
        'map[string]string{"batch.kubernetes.io/controller-uid":"uid-1", "batch.kubernetes.io/job-name":"pi", '
        "\"controller-uid\":\"zzz\", \"job-name\":\"pi\"}: must be 'uid-1'")


def test_selector_expression_validation() -> None:
    body = job(manualSelector=True, template_labels={"a": "b"},
               selector={"matchExpressions": [{"key": "a", "operator": "In"}]})
    msg = invalid_message(admission.admit_create, JOBS, body)
    assert msg == ('Job.batch "pi" is invalid: spec.selector.matchExpressions[0].values: Required value: '
                   "must be specified when `operator` is 'In' or 'NotIn'")


# ---------------------------------------------------------------- updates


def test_update_keeps_status_and_bumps_generation() -> None:
    old = created(JOBS, job())
    old["status"] = {"active": 1}
    new = clone(old)
    new["status"] = {"active": 99}
    new["spec"]["parallelism"] = 4
    assert admission.admit_update(JOBS, new, old) == []
    assert new["status"] == {"active": 1}
    assert new["metadata"]["generation"] == 2
    same = clone(old)
    same["metadata"]["labels"]["extra"] = "1"
    admission.admit_update(JOBS, same, old)
    assert same["metadata"]["generation"] == 1


def test_update_immutable_fields() -> None:
    old = created(JOBS, job())
    new = clone(old)
    new["spec"]["completions"] = 3
    new["spec"]["completionMode"] = "Indexed"
    msg = invalid_message(admission.admit_update, JOBS, new, old)
    assert "spec.completionMode: Invalid value: \"Indexed\": field is immutable" in msg
    new = clone(old)
    new["spec"]["completions"] = 3
    msg = invalid_message(admission.admit_update, JOBS, new, old)
    assert msg == 'Job.batch "pi" is invalid: spec.completions: Invalid value: 3: field is immutable'
    new = clone(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    msg = invalid_message(admission.admit_update, JOBS, new, old)
    assert msg.startswith('Job.batch "pi" is invalid: spec.template: Invalid value: core.PodTemplateSpec{')
    assert msg.endswith(": field is immutable")


def test_elastic_indexed_completions() -> None:
    old = created(JOBS, job(completionMode="Indexed", completions=4, parallelism=4))
    new = clone(old)
    new["spec"]["completions"] = 2
    msg = invalid_message(admission.admit_update, JOBS, new, old)
    assert msg == ('Job.batch "pi" is invalid: spec.completions: Invalid value: 2: '
                   "can only be modified in tandem with spec.parallelism")
    new["spec"]["parallelism"] = 2
    admission.admit_update(JOBS, new, old)
    assert new["metadata"]["generation"] == 2


def test_scheduling_directives_mutable_while_suspended_and_not_started() -> None:
    old = created(JOBS, job(suspend=True))
    new = clone(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    new["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    admission.admit_update(JOBS, new, old)
    started = clone(old)
    started["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    new = clone(started)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    msg = invalid_message(admission.admit_update, JOBS, new, started)
    assert "spec.template: Invalid value" in msg


def test_status_update_keeps_spec() -> None:
    old = created(JOBS, job())
    new = clone(old)
    new["spec"]["parallelism"] = 7
    new["status"] = {"active": 1, "ready": 1, "startTime": "2024-01-01T00:00:01Z"}
    admission.admit_status_update(JOBS, new, old)
    assert new["spec"]["parallelism"] == 1
    assert new["status"]["active"] == 1


def _finished_old() -> dict:
    old = created(JOBS, job())
    old["status"] = {"startTime": "2024-01-01T00:00:00Z", "active": 1}
    return old


def test_status_rules() -> None:
    old = _finished_old()
    new = clone(old)
    new["status"] = {"active": 2, "ready": 3, "conditions": [{"type": "Failed", "status": "True"}]}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == (
        'Job.batch "pi" is invalid: [status.conditions: Invalid value: cannot set Failed=True condition without '
        "the FailureTarget=true condition, status.active: Invalid value: 2: active>0 is invalid for finished job, "
        "status.startTime: Required value: startTime is required for finished job, "
        "status.ready: Invalid value: 3: cannot set more ready pods than active, "
        "status.startTime: Required value: startTime cannot be removed for unsuspended job]")


def test_status_complete_requires_success_criteria_and_completion_time() -> None:
    old = _finished_old()
    new = clone(old)
    new["status"] = {"startTime": "2024-01-01T00:00:00Z", "succeeded": 1,
                     "conditions": [{"type": "Complete", "status": "True"}]}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == (
        'Job.batch "pi" is invalid: [status.completionTime: Required value: completionTime is required for '
        "Complete jobs, status.conditions: Invalid value: cannot set Complete=True condition without the "
        "SuccessCriteriaMet=true condition]")
    new["status"]["conditions"].insert(0, {"type": "SuccessCriteriaMet", "status": "True"})
    new["status"]["completionTime"] = "2024-01-01T00:00:05Z"
    admission.admit_status_update(JOBS, new, old)


def test_status_cannot_decrease_or_disable_terminal() -> None:
    old = _finished_old()
    old["status"] = {"startTime": "2024-01-01T00:00:00Z", "failed": 3,
                     "conditions": [{"type": "FailureTarget", "status": "True"},
                                    {"type": "Failed", "status": "True"}]}
    new = clone(old)
    new["status"] = {"startTime": "2024-01-01T00:00:00Z", "failed": 1, "conditions": []}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == (
        'Job.batch "pi" is invalid: [status.conditions: Invalid value: cannot disable the terminal Failed=True '
        "condition, status.conditions: Invalid value: cannot disable the terminal FailureTarget=True condition, "
        "status.failed: Invalid value: 1: cannot decrease the failed counter]")


def test_status_indexes() -> None:
    old = created(JOBS, job(completionMode="Indexed", completions=4, parallelism=2))
    new = clone(old)
    new["status"] = {"completedIndexes": "1,0"}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == ('Job.batch "pi" is invalid: status.completedIndexes: Invalid value: "1,0": error parsing '
                   "completedIndexes: non-increasing order, previous: 1, current: 0")
    new["status"] = {"completedIndexes": "0", "failedIndexes": "1"}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == ('Job.batch "pi" is invalid: status.failedIndexes: Invalid value: "1": cannot set non-null '
                   "failedIndexes when backoffLimitPerIndex is null")


def test_status_failed_indexes_overlap() -> None:
    old = created(JOBS, job(completionMode="Indexed", completions=4, parallelism=2, backoffLimitPerIndex=1))
    new = clone(old)
    new["status"] = {"completedIndexes": "0-2", "failedIndexes": "2"}
    msg = invalid_message(admission.admit_status_update, JOBS, new, old)
    assert msg == ('Job.batch "pi" is invalid: status.failedIndexes: Invalid value: "2": '
                   "failedIndexes and completedIndexes overlap at index: 2")
