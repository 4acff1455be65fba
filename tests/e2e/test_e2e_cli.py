"""The ``jobplane`` CLI verbs against a real server, checked against /usr/bin/kubectl's output.

Uses the ``server_factory`` fixture of tests/e2e/conftest.py (a ``jobplane server`` with its
embedded agent, so pods really run) and ``jp`` (no agent: pods never start).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from jobs_helpers import wait_for

JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  backoffLimit: 4
  template:
    spec:
      containers:
      - name: pi
        image: busybox
        command: ["sh", "-c", "echo hello; echo world"]
      restartPolicy: Never
"""

NAMESPACE_AND_CRONJOB = """\
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
  namespace: team
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: c
            image: busybox
            command: ["echo", "tick"]
          restartPolicy: OnFailure
"""

# Columns that hold ages and durations differ by a second between two runs. A wider age ("9s" ->
# "10s") also widens its column, so padding is compared exactly only when the ages have equal widths.
_AGE = re.compile(r"\b\d+(s|m\d*s?|h\d*m?|d\d*h?)\b")
_PADDING = re.compile(r" {2,}")


def _age_widths(text: str) -> list[int]:
    return [len(m.group(0)) for m in _AGE.finditer(text)]


def _masked(ours: str, theirs: str) -> tuple[str, str]:
    same_widths = _age_widths(ours) == _age_widths(theirs)
    ours, theirs = _AGE.sub("<age>", ours), _AGE.sub("<age>", theirs)
    return (ours, theirs) if same_widths else (_PADDING.sub("  ", ours), _PADDING.sub("  ", theirs))


def jobplane(server, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobplane", *args], env=server.env, capture_output=True,
                          text=True, timeout=timeout, input=input)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def same_as_kubectl(server, *args: str, ages: bool = True) -> str:
    """Run a read-only verb with both tools; outputs must match (ages masked)."""
    ours = jobplane(server, *args)
    theirs = server.kubectl(*args)
    out, expected = (ours.stdout, theirs.stdout) if not ages else _masked(ours.stdout, theirs.stdout)
    err, expected_err = (ours.stderr, theirs.stderr) if not ages else _masked(ours.stderr, theirs.stderr)
    assert (ours.returncode, out, err) == (theirs.returncode, expected, expected_err), f"jobplane {' '.join(args)}"
    return ours.stdout


def test_job_lifecycle_through_cli(server_factory, tmp_path):
    srv = server_factory()
    manifest = tmp_path / "job.yaml"
    manifest.write_text(JOB)

    assert ok(jobplane(srv, "apply", "-f", str(manifest))) == "job.batch/pi created\n"
    assert ok(jobplane(srv, "apply", "-f", str(manifest))) == "job.batch/pi unchanged\n"
    assert ok(jobplane(srv, "wait", "--for=condition=Complete", "job/pi", "--timeout=60s")) == \
        "job.batch/pi condition met\n"
    assert ok(jobplane(srv, "logs", "job/pi")) == "hello\nworld\n"

    table = same_as_kubectl(srv, "get", "jobs")
    assert table.splitlines()[0] == "NAME   STATUS     COMPLETIONS   DURATION   AGE"
    assert table.splitlines()[1].startswith("pi     Complete   1/1 ")
    pods = same_as_kubectl(srv, "get", "pods", "-o", "wide")
    assert "Completed" in pods and "READINESS GATES" in pods
    same_as_kubectl(srv, "get", "all", "-A", "--show-labels")
    same_as_kubectl(srv, "get", "job", "pi", "-o", "yaml")
    same_as_kubectl(srv, "get", "pods", "-o", "json")
    same_as_kubectl(srv, "get", "pods", "-o", "name")
    same_as_kubectl(srv, "get", "pods", "-l", "job-name=pi", "-o", "jsonpath={.items[*].metadata.name}")
    same_as_kubectl(srv, "get", "pods", "-o", 'jsonpath={range .items[*]}{.status.phase}{"\\n"}{end}')
    same_as_kubectl(srv, "get", "events", "-o", "wide")
    described = same_as_kubectl(srv, "describe", "job", "pi")
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed\n" in described
    same_as_kubectl(srv, "describe", "pods")

    changed = tmp_path / "job2.yaml"
    changed.write_text(JOB.replace("backoffLimit: 4", "backoffLimit: 5"))
    assert ok(jobplane(srv, "apply", "-f", str(changed))) == "job.batch/pi configured\n"
    immutable = tmp_path / "job3.yaml"
    immutable.write_text(JOB.replace("echo hello; echo world", "echo changed"))
    result = jobplane(srv, "apply", "-f", str(immutable))
    assert result.returncode == 1
    assert result.stderr.startswith('The Job "pi" is invalid: spec.template: Invalid value: ')
    assert result.stderr.rstrip().endswith("field is immutable")

    assert ok(jobplane(srv, "delete", "job", "pi")) == 'job.batch "pi" deleted\n'
    result = jobplane(srv, "get", "job", "pi")
    assert (result.returncode, result.stderr) == (1, 'Error from server (NotFound): jobs.batch "pi" not found\n')
    result = jobplane(srv, "get", "jobs")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "No resources found in default namespace.\n")


def test_create_verbs_and_errors(jp, tmp_path):
    assert ok(jobplane(jp, "create", "job", "hello", "--image=busybox", "--", "echo", "hi")) == \
        "job.batch/hello created\n"
    result = jobplane(jp, "create", "job", "hello", "--image=busybox")
    assert (result.returncode, result.stderr) == \
        (1, 'error: failed to create job: jobs.batch "hello" already exists\n')
    job = jp.kubectl("get", "job", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].command}").stdout
    assert job == '["echo","hi"]'

    assert ok(jobplane(jp, "create", "namespace", "other")) == "namespace/other created\n"
    assert ok(jobplane(jp, "create", "cronjob", "cj", "--image=busybox", "--schedule=0 0 1 1 *", "--",
                       "echo", "x")) == "cronjob.batch/cj created\n"
    assert ok(jobplane(jp, "create", "job", "manual", "--from=cronjob/cj")) == "job.batch/manual created\n"
    annotations = jp.kubectl("get", "job", "manual", "-o",
                             "jsonpath={.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}").stdout
    assert annotations == "manual"
    same_as_kubectl(jp, "get", "cj,jobs")
    same_as_kubectl(jp, "describe", "cronjob", "cj")

    manifests = tmp_path / "both.yaml"
    manifests.write_text(NAMESPACE_AND_CRONJOB)
    assert ok(jobplane(jp, "apply", "-f", "-", input=NAMESPACE_AND_CRONJOB)) == \
        "namespace/team created\ncronjob.batch/tick created\n"
    same_as_kubectl(jp, "get", "cronjobs", "-n", "team", "-o", "wide")
    same_as_kubectl(jp, "get", "ns")
    same_as_kubectl(jp, "describe", "ns", "team")
    same_as_kubectl(jp, "get", "nodes")

    for args, message in (
        (("get", "foo"), 'error: the server doesn\'t have a resource type "foo"\n'),
        (("describe", "job", "nope"), 'Error from server (NotFound): jobs.batch "nope" not found\n'),
        (("delete", "job", "nope"), 'Error from server (NotFound): jobs.batch "nope" not found\n'),
        (("wait", "--for=condition=Complete", "job/nope", "--timeout=1s"),
         'Error from server (NotFound): jobs.batch "nope" not found\n'),
    ):
        result = jobplane(jp, *args)
        assert (result.returncode, result.stderr) == (1, message), args

    # no agent: the job never completes, so the wait times out
    start = time.monotonic()
    result = jobplane(jp, "wait", "--for=condition=Complete", "job/hello", "--timeout=1s")
    assert (result.returncode, result.stderr) == (1, "error: timed out waiting for the condition on jobs/hello\n")
    assert time.monotonic() - start < 30

    cronjob_only = tmp_path / "cronjob.yaml"
    cronjob_only.write_text(NAMESPACE_AND_CRONJOB.split("---\n", 1)[1])
    assert ok(jobplane(jp, "delete", "-f", str(cronjob_only))) == 'cronjob.batch "tick" deleted\n'
    assert ok(jobplane(jp, "delete", "ns", "team")) == 'namespace "team" deleted\n'
    assert ok(jobplane(jp, "delete", "cronjob", "cj", "--cascade=orphan")) == 'cronjob.batch "cj" deleted\n'
    assert ok(jobplane(jp, "wait", "--for=delete", "cronjob/cj", "--timeout=10s")) in (
        "", "cronjob.batch/cj condition met\n")


@pytest.mark.parametrize("verb", ["get", "describe", "logs", "wait", "apply", "delete", "create"])
def test_help_lists_connection_options(verb):
    out = subprocess.run([sys.executable, "-m", "jobplane", verb, "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    assert "--kubeconfig" in out and "--namespace" in out


WATCHES = {  # -o and what each watcher shows of the job once listed, and once it changed
    "name": (("-o", "name"), lambda t: t.count("job.batch/w1\n") >= 1, lambda t: t.count("job.batch/w1\n") >= 2),
    "json-events": (("-o", "json", "--output-watch-events"), lambda t: '"ADDED"' in t, lambda t: '"MODIFIED"' in t),
    "yaml-events": (("-o", "yaml", "--output-watch-events"), lambda t: "type: ADDED" in t,
                    lambda t: "type: MODIFIED" in t),
    "custom-columns": (("-o", "custom-columns=NAME:.metadata.name,SEEN:.metadata.labels.seen"),
                       lambda t: "w1" in t, lambda t: "yes" in t),
    "table-events": (("--output-watch-events", "--no-headers"), lambda t: "ADDED" in t,
                     lambda t: "MODIFIED" in t),
}


def test_get_watch_prints_what_kubectl_prints(jp, tmp_path):
    """``get -w``: the list, then one line/object per event, byte for byte as kubectl 1.32
    (tables: ages masked), for the table and each -o printer."""
    jp.kubectl("create", "job", "w1", "--image=busybox", "--", "true", check=True)
    procs = []
    for name, (args, _, _) in WATCHES.items():
        for tool, argv in (("ours", [sys.executable, "-m", "jobplane"]), ("theirs", ["/usr/bin/kubectl"])):
            out = tmp_path / f"{name}.{tool}"
            with open(out, "w") as f:
                procs.append(subprocess.Popen([*argv, "get", "jobs", "-w", *args], env=jp.env, stdout=f,
                                              stderr=subprocess.STDOUT))
    def shown(stage: int) -> list[str]:
        """The watchers that do not show ``stage`` (1: listed, 2: changed) yet."""
        return [f"{name}.{tool}" for name, checks in WATCHES.items() for tool in ("ours", "theirs")
                if not checks[stage]((tmp_path / f"{name}.{tool}").read_text())]

    try:
        wait_for(lambda: not shown(1), 90, what="every watcher listing the job")
        jp.kubectl("label", "job", "w1", "seen=yes", check=True)
        wait_for(lambda: not shown(2), 90, what="every watcher showing the change")
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    for name in WATCHES:
        ours, theirs = (tmp_path / f"{name}.ours").read_text(), (tmp_path / f"{name}.theirs").read_text()
        if name.startswith("table"):
            ours, theirs = _masked(ours, theirs)
        assert ours == theirs, name
