"""The dashboard in headless Chromium: a one-time login link, a running Job's progress
updating live in the Jobs list, its pod timeline and a log line appearing."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from browser_helpers import Browser, available

pytestmark = pytest.mark.skipif(not available(), reason="needs chromium, chromedriver and selenium")

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: walk}
spec:
  completions: 4
  parallelism: 1
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["sh", "-c", "echo step-$JOB_COMPLETION_INDEX; sleep 1.5"]}]
"""


def cell(browser, job: str, selector: str) -> str:
    return browser.js("const r = document.querySelector(`tr[data-job='${arguments[0]}'] ${arguments[1]}`);"
                      "return r ? r.textContent : '';", job, selector)


def test_dashboard_login_live_progress_timeline_and_logs(server_factory):
    srv = server_factory()
    link = subprocess.run([sys.executable, "-m", "jobplane", "dashboard"], env=srv.env, capture_output=True,
                          text=True, timeout=60)
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith(srv.url + "/ui/#code=")
    browser = Browser()
    try:
        d = browser.driver
        d.get(url)
        browser.wait(lambda d: "Jobs" in d.find_element("tag name", "h1").text)
        # The code worked once; the link is now spent.
        ctx = ssl.create_default_context(cafile=str(srv.ca_file()))
        again = urllib.request.Request(srv.url + "/ui/api/redeem", method="POST",
                                       data=json.dumps({"code": url.rsplit("=", 1)[1]}).encode(),
                                       headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as spent:
            urllib.request.urlopen(again, context=ctx, timeout=30)
        assert spent.value.code == 401

        srv.kubectl("apply", "-f", "-", input=JOB, check=True)
        seen = set()

        def progressed(_):
            text = cell(browser, "walk", ".completions")
            if text:
                seen.add(text)
            return "2/4" in seen or "3/4" in seen

        browser.wait(progressed, 60)  # the list moved without a reload (watch stream)
        assert len(seen) >= 2, seen

        d.get(srv.url + "/ui/#/ns/default/jobs/walk")
        browser.wait(lambda d: browser.js("return document.getElementById('main').dataset.ready") == "1")
        browser.wait(lambda d: int(browser.js("return document.getElementById('timeline').dataset.rows || 0")) >= 2)
        assert browser.js("return document.querySelectorAll('#timeline .tbar').length") >= 2
        browser.wait(lambda d: "step-" in browser.js("return document.getElementById('log').textContent"), 60)
        browser.wait(lambda d: "Complete" in browser.js("return document.getElementById('state').textContent"), 60)
        assert browser.js("return document.querySelectorAll('#timeline .tbar.Succeeded').length") == 4
    finally:
        browser.close()
