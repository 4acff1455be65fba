"""Every field of the Job, CronJob and Pod schemas (and of the kinds added since: RuntimeClass,
CertificateSigningRequest), one at a time, with a value of the wrong type: each create answers
400 and nothing is stored."""

from __future__ import annotations

import pytest

from jobplane.api import errors
from jobplane.api.registry import CERTIFICATESIGNINGREQUESTS, CRONJOBS, JOBS, PODS, RUNTIMECLASSES
from schema_walk import build, kind_fields


@pytest.mark.parametrize(("info", "at_least"), [(JOBS, 500), (CRONJOBS, 500), (PODS, 500),
                                                (RUNTIMECLASSES, 30), (CERTIFICATESIGNINGREQUESTS, 30)],
                         ids=lambda i: getattr(i, "kind", str(i)))
async def test_every_field_with_a_wrong_type_is_400_and_nothing_is_stored(service, info, at_least):
    cases = kind_fields(info)
    assert len(cases) > at_least  # the whole tree (for a workload, its pod template included)
    namespace = "default" if info.namespaced else None
    answers: dict[int, int] = {}
    failures = []
    for path, value in cases:
        try:
            await service.create(info, namespace, build(info, path, value))
            code = 201
        except errors.StatusError as exc:
            code = exc.code
            if code == 400 and "cannot be handled as a" not in exc.message:
                failures.append((path, exc.message))
        answers[code] = answers.get(code, 0) + 1
        if code != 400:
            failures.append((path, code))
    assert not failures, failures[:20]
    assert answers == {400: len(cases)}
    assert (await service.list(info, None))["items"] == []
    print(f"{info.kind}: {len(cases)} fields, all 400")
