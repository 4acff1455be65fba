"""Fuzzing the API against a real ``jobplane server`` with its node agent.

Two drivers share one time budget:
* schemathesis over every operation of every document the server itself serves at
  ``/openapi/v3`` (valid requests from the schemas: bodies, parameters, media types);
* hypothesis: valid Jobs, CronJobs, Pods, ConfigMaps and Secrets with one field (any leaf of
  the kind's schema) replaced by an arbitrary JSON value, in JSON or YAML.
Afterwards: no answer was a 5xx, everything stored decodes as its kind, and the controllers
and the agent are alive (a fresh Job completes).

Budget: ``JOBPLANE_FUZZ_SECONDS`` (default 40, what CI runs); a long run:
``JOBPLANE_FUZZ_SECONDS=1800 .venv/bin/python -m pytest -q -s tests/e2e/test_e2e_fuzz_openapi.py``
(``JOBPLANE_FUZZ_SEED`` fixes the order of the operations).
"""

from __future__ import annotations

import os
import random
import time

import pytest
import yaml

from conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("schemathesis"), reason="schemathesis is not installed")

BUDGET = float(os.environ.get("JOBPLANE_FUZZ_SECONDS", "40"))
# Streaming and long-polling endpoints: a request that waits is not a fault.
_SKIP_PATH_PARTS = ("/watch/", "/exec", "/attach", "/portforward", "/proxy")
_DROP_QUERY = ("watch", "follow", "timeoutSeconds")


def _session(srv):
    import requests

    session = requests.Session()
    session.trust_env = False  # the server's own CA, not the environment's bundle
    session.verify = str(srv.ca_file())
    session.headers["Authorization"] = f"Bearer {srv.token()}"
    return session


def _operations(srv, session) -> list:
    import schemathesis

    ops = []
    index = session.get(f"{srv.url}/openapi/v3", timeout=30).json()
    for path in sorted(index["paths"]):
        doc = session.get(f"{srv.url}/openapi/v3/{path}", timeout=30).json()
        if not doc.get("paths"):
            continue
        for result in schemathesis.openapi.from_dict(doc).get_all_operations():
            op = result.ok()
            if any(part in op.path for part in _SKIP_PATH_PARTS):
                continue
            if op.method.upper() == "DELETE" and op.path.startswith("/api/v1/nodes"):
                continue  # the agent's own node
            ops.append(op)
    return ops


def _prepare(case) -> None:
    """Aim the request at something that exists, so it gets past the 404."""
    if case.path_parameters and "namespace" in case.path_parameters:
        case.path_parameters["namespace"] = "default"
    for name in _DROP_QUERY:
        (case.query or {}).pop(name, None)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("spec"), dict) and case.path.endswith(("/jobs", "/cronjobs")):
        body["spec"]["suspend"] = True  # a random Job that passes validation must not flood the node


class Tally:
    def __init__(self) -> None:
        self.codes: dict[int, int] = {}
        self.server_errors: list[str] = []

    def add(self, status: int, what: str, text: str) -> None:
        self.codes[status] = self.codes.get(status, 0) + 1
        if status >= 500:
            self.server_errors.append(f"{status} {text[:300]}\n  {what[:2000]}")


def _schemathesis(srv, session, ops, deadline: float, tally: Tally) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    def fuzz(op) -> None:
        @settings(max_examples=2, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case) -> None:
            if time.monotonic() > deadline:
                return
            _prepare(case)
            resp = case.call(base_url=srv.url, session=session, verify=str(srv.ca_file()), timeout=30)
            tally.add(resp.status_code, case.as_curl_command(), resp.text)

        run()

    done = 0
    for op in ops:
        if time.monotonic() > deadline:
            break
        fuzz(op)
        done += 1
    return done


def _mutations(srv, session, deadline: float, tally: Tally) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from jobplane.api import registry
    from schema_walk import build, kind_fields

    kinds = [registry.resolve(k) for k in ("jobs", "cronjobs", "pods", "configmaps", "secrets")
             if _served(k)]
    fields = [(info, path) for info in kinds for path, _ in kind_fields(info)]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8)

    @settings(max_examples=20, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(field=st.sampled_from(fields), value=json_values, as_yaml=st.booleans(), n=st.integers(0, 10**9))
    def run(field, value, as_yaml, n) -> None:
        if time.monotonic() > deadline:
            return
        info, path = field
        body = build(info, path, value, name=f"fz-{n}")
        url = f"{srv.url}{info.collection_path('default')}"
        if as_yaml:
            resp = session.post(url, data=yaml.safe_dump(body), headers={"Content-Type": "application/yaml"},
                                timeout=30)
        else:
            resp = session.post(url, json=body, timeout=30)
        tally.add(resp.status_code, f"POST {url} {body}", resp.text)
        if resp.status_code == 201 and info.kind in ("Job", "CronJob"):
            session.delete(f"{url}/{body['metadata']['name']}", params={"propagationPolicy": "Background"},
                           timeout=30)

    while time.monotonic() < deadline:  # in rounds, so generation stops with the budget
        run()


def _served(resource: str) -> bool:
    from jobplane.api import openapi, registry

    try:
        info = registry.resolve(resource)
    except KeyError:
        return False
    return openapi.schema_name(info.group, info.version, info.kind) is not None


def test_fuzzed_requests_never_get_5xx_store_only_decodable_objects_and_leave_controllers_alive(server_factory):
    from jobplane.api import decode, registry

    srv = server_factory()
    session = _session(srv)
    ops = _operations(srv, session)
    assert len(ops) > 50
    random.Random(os.environ.get("JOBPLANE_FUZZ_SEED")).shuffle(ops)
    start = time.monotonic()
    tally = Tally()
    covered = _schemathesis(srv, session, ops, start + BUDGET / 2, tally)
    _mutations(srv, session, start + BUDGET, tally)
    print(f"fuzz: {sum(tally.codes.values())} requests in {time.monotonic() - start:.0f} s, "
          f"schemathesis over {covered} of {len(ops)} operations; answers {dict(sorted(tally.codes.items()))}")
    assert not tally.server_errors, "\n".join(tally.server_errors[:10])
    assert sum(tally.codes.values()) > 20

    # Nothing stored that does not decode as its kind.
    for info in registry.RESOURCES:
        if info.read_only or "list" not in info.verbs:
            continue
        listed = session.get(f"{srv.url}{info.collection_path(None)}", timeout=30)
        assert listed.status_code == 200, (info.plural, listed.text[:300])
        for item in listed.json()["items"]:
            decode.check(info.group, info.version, info.kind, item)

    # The controllers and the agent are alive: a fresh Job runs to completion.
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "after-fuzz"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}
    created = session.post(f"{srv.url}/apis/batch/v1/namespaces/default/jobs", json=job, timeout=30)
    assert created.status_code == 201, created.text
    result = srv.kubectl("wait", "--for=condition=Complete", "job/after-fuzz", "--timeout=120s", timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
