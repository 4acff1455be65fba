"""Regenerate docs/dashboard-jobs.png and docs/dashboard-job.png: a server with its agent
runs a few Jobs (one Indexed Job with retries still running) and headless Chromium takes
the pictures. Usage: .venv/bin/python scripts/dashboard_screenshots.py"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from benchlib import start_server  # noqa: E402
from browser_helpers import Browser  # noqa: E402

RENDER = ("i=$JOB_COMPLETION_INDEX; echo \"frame $i: loading scene\"; sleep $((1 + i % 4)); "
          "if [ $(( $(od -An -N1 -tu1 /dev/urandom) % 5 )) = 0 ]; then echo \"frame $i: out of memory\"; exit 137; fi; "
          "echo \"frame $i: rendered in $((1 + i % 4))s\"")


def job(name: str, command: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", command]}]}}}}


async def submit(srv) -> None:
    async with srv.session() as s:
        for body in (
            job("pi", "echo 3.14159265358979323846"),
            job("flaky-import", "echo importing; echo 'error: upstream returned 503' >&2; exit 2", backoffLimit=1),
            job("render-frames", RENDER, completions=48, parallelism=6, completionMode="Indexed", backoffLimit=30),
        ):
            async with s.post("/apis/batch/v1/namespaces/default/jobs", json=body) as r:
                assert r.status == 201, await r.text()
            await asyncio.sleep(1.5)
        cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly-report"},
                "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": job("x", "echo report")["spec"]}}}
        async with s.post("/apis/batch/v1/namespaces/default/cronjobs", json=cron) as r:
            assert r.status == 201, await r.text()


def main() -> None:
    srv = start_server(agent=True, extra=["--pod-backoff-base", "0.5"])
    browser = Browser(1400, 1000)
    try:
        asyncio.run(submit(srv))
        d = browser.driver
        d.get(srv.url + "/ui/")
        browser.js("sessionStorage.setItem('jobplane-token', arguments[0])", srv.token)
        time.sleep(9)
        d.get("about:blank")  # a hash-only change would not reload the page
        d.get(srv.url + "/ui/#/")
        browser.wait(lambda d: browser.js("return document.querySelectorAll('tr[data-job]').length") >= 3)
        time.sleep(1)
        d.save_screenshot(str(ROOT / "docs" / "dashboard-jobs.png"))
        d.get(srv.url + "/ui/#/ns/default/jobs/render-frames")
        browser.wait(lambda d: browser.js("return document.getElementById('main').dataset.ready") == "1")
        time.sleep(3)
        d.save_screenshot(str(ROOT / "docs" / "dashboard-job.png"))
        print("wrote docs/dashboard-jobs.png and docs/dashboard-job.png")
    finally:
        browser.close()
        srv.stop()


if __name__ == "__main__":
    main()
