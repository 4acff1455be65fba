"""The Kubernetes "Jobs - Run to Completion" documentation walk-through, verbatim: the pi
example, and the old/new ``manualSelector`` story, against a server that runs pods."""

from __future__ import annotations

import re
import subprocess

import pytest
from jobs_helpers import EXAMPLES, job_manifest, phase, wait_for


def _perl_bpi_failure() -> str | None:
    """Why this host's perl cannot compute bpi(2000), or None when it can. Only a real failure
    counts: a slow perl on a loaded machine is no reason to skip."""
    try:
        out = subprocess.run(["perl", "-Mbignum=bpi", "-e", "print bpi(2000)"], capture_output=True,
                             text=True, timeout=120)
    except FileNotFoundError:
        return "perl is not installed"
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0 or not out.stdout.startswith("3.14159"):
        return ("perl cannot compute bpi(2000) (Debian 12: install libmath-bigint-perl): "
                + (out.stderr.strip().splitlines() or ["no output"])[-1])
    return None


def test_pi_walkthrough(cluster):
    if why := _perl_bpi_failure():
        pytest.skip(why)
    cl = cluster()
    out = cl.kubectl("apply", "-f", str(EXAMPLES / "pi-job.yaml"), check=True).stdout
    assert out.strip() == "job.batch/pi created"
    cl.wait_complete("pi", timeout=60)

    describe = cl.kubectl("describe", "jobs/pi", check=True).stdout
    assert re.search(r"^Name:\s+pi$", describe, re.M), describe
    # kubectl aligns the values with a tabwriter, so the gap after the label varies by version.
    assert re.search(r"^Pods Statuses:\s+0 Active \(0 Ready\) / 1 Succeeded / 0 Failed$", describe, re.M), describe
    assert re.search(r"^Completions:\s+1$", describe, re.M) and re.search(r"^Parallelism:\s+1$", describe, re.M)
    assert re.search(r"^Backoff Limit:\s+4$", describe, re.M), describe
    assert re.search(r"^Completed At:\s+\S", describe, re.M), describe
    created = re.search(r"Normal\s+SuccessfulCreate\s+\S+\s+job-controller\s+Created pod: (pi-[a-z0-9]{5})$",
                        describe, re.M)
    assert created, describe

    pods = cl.kubectl("get", "pods", "--selector=job-name=pi", "--output=jsonpath={.items[*].metadata.name}",
                      check=True).stdout
    assert pods == created.group(1)

    digits = cl.kubectl("logs", pods, check=True).stdout.strip()
    assert digits.startswith("3.14159265358979323846"), digits[:60]
    # bpi(2000): 2000 significant digits, "3." and 1999 decimals, ending as the documentation shows.
    assert re.fullmatch(r"3\.\d{1999}", digits), len(digits)
    assert digits.endswith("8133904780275901"), digits[-20:]

    # `kubectl delete jobs/pi` also deletes the pods it created.
    assert cl.kubectl("delete", "jobs/pi", check=True).stdout.strip() == 'job.batch "pi" deleted'
    cl.wait_no_pods("job-name=pi")


@pytest.mark.parametrize("cascade", ["orphan", "false"])
def test_manual_selector_adopts_orphaned_pod(cluster, cascade):
    cl = cluster()
    cl.apply(job_manifest("old", ["sleep", "30"]))
    pod = wait_for(lambda: [p for p in cl.job_pods("old") if phase(p) == "Running"], 30,
                   what="old's pod to run")[0]
    old_job = cl.job("old")
    old_uid = old_job["metadata"]["uid"]
    assert old_job["spec"]["selector"]["matchLabels"] == {"batch.kubernetes.io/controller-uid": old_uid}
    assert pod["metadata"]["labels"]["controller-uid"] == old_uid

    deleted = cl.kubectl("delete", "jobs/old", f"--cascade={cascade}", check=True)
    assert deleted.stdout.strip() == 'job.batch "old" deleted'
    if cascade == "false":
        assert "warning: --cascade=false is deprecated (boolean value) and can be replaced with " \
               "--cascade=orphan." in deleted.stderr
    wait_for(lambda: cl.job("old") is None, 15, what="job old to be gone")

    def orphaned() -> dict | None:
        pods = cl.job_pods("old")
        return pods[0] if len(pods) == 1 and not pods[0]["metadata"].get("ownerReferences") else None

    orphan = wait_for(orphaned, 15, what="the pod to lose its ownerReferences")
    assert orphan["metadata"]["name"] == pod["metadata"]["name"] and phase(orphan) == "Running"

    new = job_manifest("new", ["sleep", "30"])
    new["spec"]["manualSelector"] = True
    new["spec"]["selector"] = {"matchLabels": {"controller-uid": old_uid}}
    new["spec"]["template"]["metadata"] = {"labels": {"controller-uid": old_uid}}
    assert cl.apply(new).strip() == "job.batch/new created"
    new_job = cl.job("new")
    assert new_job["metadata"]["uid"] != old_uid
    assert new_job["spec"]["selector"] == {"matchLabels": {"controller-uid": old_uid}}

    def adopted() -> dict | None:
        job = cl.job("new")
        return job if (job.get("status") or {}).get("active") == 1 else None

    status = wait_for(adopted, 15, what="job new to count the adopted pod")["status"]
    assert not status.get("succeeded") and not status.get("failed")
    pods = cl.pods(f"controller-uid={old_uid}")
    assert [p["metadata"]["name"] for p in pods] == [pod["metadata"]["name"]], "new must not create a pod"
    refs = pods[0]["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == \
        [("Job", "new", new_job["metadata"]["uid"], True)]
    assert phase(pods[0]) == "Running"
