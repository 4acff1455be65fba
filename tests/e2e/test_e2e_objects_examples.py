"""The ConfigMap/Secret and PVC examples run end to end from their README lines, and
``kubectl apply -k`` with generators creates everything a Job then uses."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_to_completion(srv, job: str) -> str:
    srv.kubectl("wait", "--for=condition=Complete", f"job/{job}", "--timeout=90s", check=True, timeout=100)
    return srv.kubectl("logs", f"job/{job}", check=True).stdout


def test_config_and_secret_examples(server_factory):
    srv = server_factory()
    srv.kubectl("apply", "-f", str(EXAMPLES / "config-and-secret" / "job.yaml"), check=True)
    assert run_to_completion(srv, "config-reader") == "env: hello\nenvFrom: s3cret\ncolor=blue\nfile: s3cret\n"
    out = srv.kubectl("apply", "-k", str(EXAMPLES / "config-and-secret" / "kustomize"), check=True).stdout
    assert "job.batch/kustomized created" in out and "configmap/settings-" in out and "secret/token-" in out
    assert run_to_completion(srv, "kustomized") == "hi from kustomize / abc123\n"


def test_work_queue_writes_results_to_a_claim(server_factory):
    srv = server_factory()
    srv.kubectl("apply", "-f", str(EXAMPLES / "work-queue-pvc" / "job.yaml"), check=True)
    run_to_completion(srv, "squares")
    srv.kubectl("apply", "-f", str(EXAMPLES / "work-queue-pvc" / "summary.yaml"), check=True)
    assert run_to_completion(srv, "summary") == "3 9\n5 25\n7 49\n11 121\n13 169\n"
