"""Fuzzing the API against a real ``jobplane server`` with its node agent.

Two drivers share one time budget:
* schemathesis over every operation of every document the server itself serves at
  ``/openapi/v3`` (valid requests from the schemas: bodies, parameters, media types);
* hypothesis: valid Jobs, CronJobs, Pods, ConfigMaps and Secrets with one field (any leaf of
  the kind's schema) replaced by an arbitrary JSON value, in JSON or YAML.
Afterwards: no answer was a 5xx, everything stored decodes as its kind, and the controllers
and the agent are alive (a fresh Job completes).

Budget: ``JOBPLANE_FUZZ_SECONDS`` (default 40, what CI runs), half to each driver; a long run:
``JOBPLANE_FUZZ_SECONDS=900 .venv/bin/python -m pytest -q -s tests/e2e/test_e2e_fuzz_openapi.py``
(``JOBPLANE_FUZZ_SEED`` fixes the order of the operations). Schemathesis gives each operation
an equal share of the time left, so the slow ones (Pod bodies take seconds to generate) cannot
starve the rest: a 900 s run covers every operation about 20 times over; CI's 40 s, the first
example of as many operations as fit, in an order that differs from run to run.
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


class _OpTimeUp(Exception):
    """An operation's share of the budget is spent: on to the next one."""


# Examples per operation and pass; passes go on while the schemathesis half lasts.
_EXAMPLES = 3


def _schemathesis(srv, session, ops, deadline: float, tally: Tally) -> tuple[int, int]:
    """Every operation in turn, each with an equal share of the time left (so one that is slow
    to generate for, or to answer, cannot starve the rest: a long run used to cover 62 of 231),
    at most ``_EXAMPLES`` a pass; passes repeat while time is left. Returns (operations that
    got a request, passes begun); the slowest operations are printed."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    covered: set[int] = set()
    spent: dict[str, float] = {}

    def fuzz(i: int, op, op_deadline: float) -> None:
        @settings(max_examples=_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
        @given(case=op.as_strategy())
        def run(case) -> None:
            now = time.monotonic()
            if now > deadline or (sent and now > op_deadline):  # the first is sent however slow
                raise _OpTimeUp
            _prepare(case)
            resp = case.call(base_url=srv.url, session=session, verify=str(srv.ca_file()), timeout=30)
            sent.append(resp.status_code)
            covered.add(i)
            tally.add(resp.status_code, case.as_curl_command(), resp.text)

        sent: list[int] = []

        try:
            run()
        except _OpTimeUp:
            pass

    passes = 0
    while time.monotonic() < deadline:
        passes += 1
        for n, op in enumerate(ops):
            now = time.monotonic()
            if now > deadline:
                break
            fuzz(n, op, now + (deadline - now) / (len(ops) - n))
            key = f"{op.method.upper()} {op.path}"
            spent[key] = spent.get(key, 0.0) + time.monotonic() - now
        if len(covered) < len(ops):
            break  # a second pass only once every operation had its first
    slow = sorted(spent.items(), key=lambda kv: -kv[1])[:5]
    print("fuzz: slowest operations " + ", ".join(f"{k} {v:.1f} s" for k, v in slow))
    return len(covered), passes


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


@pytest.mark.timeout(BUDGET + 300)  # a long run outlasts the suite's 300 s per test
def test_fuzzed_requests_never_get_5xx_store_only_decodable_objects_and_leave_controllers_alive(server_factory):
    from jobplane.api import decode, registry

    srv = server_factory()
    session = _session(srv)
    ops = _operations(srv, session)
    assert len(ops) > 50
    random.Random(os.environ.get("JOBPLANE_FUZZ_SEED")).shuffle(ops)
    start = time.monotonic()
    tally = Tally()
    covered, passes = _schemathesis(srv, session, ops, start + BUDGET / 2, tally)
    by_schemathesis = sum(tally.codes.values())
    _mutations(srv, session, start + BUDGET, tally)
    print(f"fuzz: {sum(tally.codes.values())} requests in {time.monotonic() - start:.0f} s, "
          f"schemathesis {by_schemathesis} over {covered} of {len(ops)} operations ({passes} passes); "
          f"answers {dict(sorted(tally.codes.items()))}")
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
