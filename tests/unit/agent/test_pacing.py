"""When a started container's Running status is written (agent/pacing.py): at once on a quiet
node, after the delay while another pod starts or a status write is in flight."""

import contextlib

import pytest

from jobplane.agent.pacing import RunningReports

ME, OTHER = object(), object()


@pytest.mark.parametrize(("starting", "writes", "expected"), [
    ((), 0, 0.0),                # nothing else on the node
    ((ME,), 0, 0.0),             # only this pod is starting
    ((ME, OTHER), 0, 0.5),       # another pod is starting too
    ((OTHER,), 0, 0.5),
    ((ME,), 1, 0.5),             # a status write is in flight
])
def test_delay(starting, writes, expected):
    r = RunningReports()
    for pod in starting:
        r.starting(pod)
    with contextlib.ExitStack() as stack:
        for _ in range(writes):
            stack.enter_context(r.writing())
        assert r.delay(ME, 0.5) == expected


def test_started_and_gone_end_the_wait_and_writes_are_counted_while_they_last():
    r = RunningReports()
    r.starting(ME)
    r.starting(OTHER)
    assert r.delay(ME, 0.5) == 0.5
    r.started(OTHER)
    assert r.delay(ME, 0.5) == 0.0
    r.starting(OTHER)
    r.gone(OTHER)
    assert r.delay(ME, 0.5) == 0.0
    with r.writing():
        assert r.delay(ME, 0.5) == 0.5
    assert r.delay(ME, 0.5) == 0.0
    with pytest.raises(RuntimeError), r.writing():
        raise RuntimeError("the write failed")
    assert r.delay(ME, 0.5) == 0.0


def test_on_quiet_when_the_last_starting_pod_has_started():
    r = RunningReports()
    calls = []
    r.on_quiet = lambda: calls.append(r.quiet())
    a, b = object(), object()
    assert r.quiet()
    r.starting(a)
    r.starting(b)
    r.started(a)
    assert calls == [] and not r.quiet()
    r.gone(b)
    assert calls == [True]
    r.started(b)  # (again, or a pod that never was starting): no call
    assert calls == [True]


def test_alone():
    r = RunningReports()
    assert r.alone(ME)
    r.starting(ME)
    assert r.alone(ME) and not r.alone(OTHER)
    with r.writing():
        assert not r.alone(ME)
