"""Probe decisions (agent/probes.py) table-driven, and one container's probe timers
(agent/prober.ContainerProber) on a FakeClock."""

from __future__ import annotations

import pytest
from asynctools import settle

from jobplane.agent import probes as pr
from jobplane.agent.prober import ContainerProber, run_check
from jobplane.clock import FakeClock

S, F = pr.Result.SUCCESS, pr.Result.FAILURE


def spec(kind=pr.LIVENESS, **fields):
    probe = {"exec": {"command": ["true"]}, **fields}
    return pr.ProbeSpec.parse(kind, probe)


def test_parse_defaults_and_fields():
    s = pr.ProbeSpec.parse(pr.READINESS, {"httpGet": {"port": 80}})
    assert (s.handler, s.initial_delay, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (
        "httpGet", 0, 10, 1, 1, 3)
    s = pr.ProbeSpec.parse(pr.LIVENESS, {"tcpSocket": {"port": 1}, "initialDelaySeconds": 5, "periodSeconds": 2,
                                         "timeoutSeconds": 3, "failureThreshold": 4,
                                         "terminationGracePeriodSeconds": 7})
    assert (s.handler, s.initial_delay, s.period, s.timeout, s.failure_threshold, s.termination_grace) == (
        "tcpSocket", 5, 2, 3, 4, 7)
    assert pr.ProbeSpec.parse(pr.STARTUP, {"grpc": {"port": 9}}).handler == "grpc"
    cspec = {"startupProbe": {"exec": {"command": ["x"]}}, "livenessProbe": {"exec": {"command": ["y"]}}}
    assert set(pr.container_probes(cspec)) == {pr.STARTUP, pr.LIVENESS}


@pytest.mark.parametrize("kind, initial", [(pr.READINESS, F), (pr.LIVENESS, S), (pr.STARTUP, pr.Result.UNKNOWN)])
def test_initial_results(kind, initial):
    assert pr.ProbeTracker(spec(kind)).result == initial


@pytest.mark.parametrize("kind, thresholds, results, published, final, on_hold", [
    # failureThreshold 3: two failures change nothing, the third publishes Failure
    (pr.LIVENESS, {"failureThreshold": 3}, [F, F], [None, None], S, False),
    (pr.LIVENESS, {"failureThreshold": 3}, [F, F, F], [None, None, F], F, True),
    # a success in between starts the count again
    (pr.LIVENESS, {"failureThreshold": 2}, [F, S, F, F], [None, S, None, F], F, True),
    # readiness: published at once (successThreshold 1), flips both ways, never on hold
    (pr.READINESS, {}, [S, F, F, F, S], [S, None, None, F, S], S, False),
    (pr.READINESS, {"successThreshold": 3, "failureThreshold": 1}, [S, S, F, S, S, S],
     [None, None, F, None, None, S], S, False),
    # startup: Failure published after failureThreshold, then on hold
    (pr.STARTUP, {"failureThreshold": 2}, [F, F], [None, F], F, True),
    (pr.STARTUP, {"failureThreshold": 2}, [F, S], [None, S], S, False),
])
def test_thresholds(kind, thresholds, results, published, final, on_hold):
    tracker = pr.ProbeTracker(spec(kind, **thresholds))
    assert [tracker.observe(r) for r in results] == published
    assert tracker.result == final and tracker.on_hold == on_hold


@pytest.mark.parametrize("kind, elapsed, delay, started, due", [
    (pr.LIVENESS, 4.9, 5, True, False),  # whole seconds, as kubelet compares
    (pr.LIVENESS, 5.0, 5, True, True),
    (pr.LIVENESS, 9.0, 0, False, False),  # gated by the startup probe
    (pr.READINESS, 9.0, 0, False, False),
    (pr.STARTUP, 0.0, 0, False, True),
    (pr.STARTUP, 9.0, 0, True, False),  # not probed once started
    (pr.READINESS, 0.0, 0, True, True),
])
def test_due(kind, elapsed, delay, started, due):
    tracker = pr.ProbeTracker(spec(kind, initialDelaySeconds=delay))
    assert tracker.due(100.0 + elapsed, 100.0, started) == due


def test_on_hold_is_not_due():
    tracker = pr.ProbeTracker(spec(pr.LIVENESS, failureThreshold=1))
    tracker.observe(F)
    assert not tracker.due(1000.0, 0.0, True)


@pytest.mark.parametrize("outcome, output, error, expected", [
    (pr.Outcome.FAILURE, "boom", None, ("Unhealthy", "Liveness probe failed: boom")),
    (pr.Outcome.WARNING, "moved", None, ("ProbeWarning", "Liveness probe warning: moved")),
    (pr.Outcome.UNKNOWN, "", "no such container",
     ("Unhealthy", "Liveness probe errored and resulted in unknown state: no such container")),
    (pr.Outcome.SUCCESS, "ok", None, None),
])
def test_probe_events(outcome, output, error, expected):
    assert pr.probe_event(pr.LIVENESS, outcome, output, error) == expected


def test_messages_and_grace():
    assert pr.kill_message("app", pr.LIVENESS, True) == "Container app failed liveness probe, will be restarted"
    assert pr.kill_message("app", pr.STARTUP, False) == "Container app failed startup probe"
    assert pr.kill_grace(None) == 30 and pr.kill_grace(5) == 5
    assert pr.kill_grace(5, spec(terminationGracePeriodSeconds=1)) == 1
    assert pr.grace_after_hook(30, 4.7) == 26 and pr.grace_after_hook(3, 2.5) == 2.0
    assert pr.is_ready(True, None) and not pr.is_ready(False, None) and not pr.is_ready(True, F)
    assert pr.is_started(None) and not pr.is_started(pr.Result.UNKNOWN)


@pytest.mark.parametrize("port, expected", [
    (8080, 8080), ("http", 8081), ("9090", 9090), (0, "invalid port number: 0"),
    ("nope", 'strconv.Atoi: parsing "nope": invalid syntax'), (70000, "invalid port number: 70000"),
])
def test_resolve_port(port, expected):
    cspec = {"ports": [{"name": "http", "containerPort": 8081}]}
    if isinstance(expected, int):
        assert pr.resolve_port(port, cspec) == expected
    else:
        with pytest.raises(pr.ProbeConfigError, match=expected):
            pr.resolve_port(port, cspec)


def test_http_request_and_outcome():
    req = pr.http_request({"port": 80, "path": "/healthz?x=1", "scheme": "HTTPS"}, {}, "127.0.0.1", "probe")
    assert req.url == "https://127.0.0.1:80/healthz?x=1"
    assert dict(req.headers) == {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    req = pr.http_request({"port": 80, "host": "::1", "httpHeaders": [{"name": "Accept", "value": ""},
                                                                       {"name": "Host", "value": "v"}]},
                          {}, "127.0.0.1", "lifecycle")
    assert req.url == "http://[::1]:80/" and dict(req.headers) == {"Host": "v", "User-Agent": "kube-lifecycle/1.32"}
    assert pr.http_outcome(200, "ok") == (pr.Outcome.SUCCESS, "ok")
    assert pr.http_outcome(302, "") == (pr.Outcome.WARNING, "Probe terminated redirects, Response body: ")
    assert pr.http_outcome(500, "secret") == (pr.Outcome.FAILURE, "HTTP probe failed with statuscode: 500")


def test_hook_failure_message():
    handler = {"exec": {"command": ["sh", "-c", "exit 1"]}}
    assert pr.hook_failure_message(handler, "c", "p_ns(u)", "exit 1", "out") == (
        'Exec lifecycle hook ([sh -c exit 1]) for Container "c" in Pod "p_ns(u)" failed - error: exit 1, '
        'message: "out"')
    assert pr.hook({"lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}, pr.PRE_STOP) == {"sleep": {"seconds": 1}}
    assert pr.hook({}, pr.POST_START) is None


# ------------------------------------------------------------------- ContainerProber


class Script:
    """Check results by kind, in order (the last one repeats); records when each ran."""

    def __init__(self, clock, **outcomes):
        self.clock = clock
        self.outcomes = {kind: list(v) for kind, v in outcomes.items()}
        self.calls: list[tuple[str, float]] = []

    async def check(self, s):
        self.calls.append((s.kind, self.clock.now()))
        seq = self.outcomes[s.kind]
        outcome = seq.pop(0) if len(seq) > 1 else seq[0]
        return outcome, f"{s.kind.lower()} said {outcome.value}", None


def make_prober(clock, script, **specs):
    events, results = [], []
    prober = ContainerProber(specs, clock, clock.now(), script.check,
                             on_event=lambda r, m: events.append((r, m)),
                             on_result=lambda k, r: results.append((k, r)))
    return prober, events, results


async def test_readiness_runs_at_once_then_every_period():
    clock = FakeClock()
    t0 = clock.now()
    script = Script(clock, Readiness=[pr.Outcome.FAILURE, pr.Outcome.SUCCESS])
    prober, events, results = make_prober(clock, script, Readiness=spec(pr.READINESS, periodSeconds=2))
    prober.start()
    await settle()
    assert script.calls == [(pr.READINESS, t0)] and not prober.ready
    assert events == [("Unhealthy", "Readiness probe failed: readiness said failure")]
    await clock.advance(2)
    assert prober.ready and results == [(pr.READINESS, S)]
    prober.stop()


async def test_liveness_failure_after_threshold_then_on_hold():
    clock = FakeClock()
    t0 = clock.now()
    script = Script(clock, Liveness=[pr.Outcome.FAILURE])
    prober, events, results = make_prober(clock, script, Liveness=spec(periodSeconds=1, failureThreshold=3))
    prober.start()
    await settle()
    for _ in range(6):
        await clock.advance(1)
    # first check one period after the start; published after the third; then on hold
    assert [t - t0 for _, t in script.calls] == [1, 2, 3]
    assert results == [(pr.LIVENESS, F)]
    assert [m for _, m in events] == ["Liveness probe failed: liveness said failure"] * 3
    prober.stop()


async def test_startup_gates_liveness_and_readiness():
    clock = FakeClock()
    t0 = clock.now()
    script = Script(clock, Startup=[pr.Outcome.FAILURE, pr.Outcome.FAILURE, pr.Outcome.SUCCESS],
                    Liveness=[pr.Outcome.SUCCESS], Readiness=[pr.Outcome.SUCCESS])
    prober, _events, results = make_prober(
        clock, script, Startup=spec(pr.STARTUP, periodSeconds=1, failureThreshold=5),
        Liveness=spec(periodSeconds=1), Readiness=spec(pr.READINESS, periodSeconds=10))
    prober.start()
    await settle()
    assert not prober.started and not prober.ready
    for _ in range(5):
        await clock.advance(1)
    startup_times = [t - t0 for k, t in script.calls if k == pr.STARTUP]
    assert startup_times == [1, 2, 3]  # then no more: started
    assert prober.started and prober.ready
    # readiness: nothing while not started, then at once when the startup probe passed
    readiness_times = [t - t0 for k, t in script.calls if k == pr.READINESS]
    assert readiness_times == [3]
    assert results[:2] == [(pr.STARTUP, S), (pr.READINESS, S)]
    liveness_times = [t - t0 for k, t in script.calls if k == pr.LIVENESS]
    assert liveness_times and liveness_times[0] >= 3  # none before the startup probe passed
    prober.stop()


async def test_initial_delay():
    clock = FakeClock()
    t0 = clock.now()
    script = Script(clock, Readiness=[pr.Outcome.SUCCESS])
    prober, _events, _results = make_prober(clock, script,
                                            Readiness=spec(pr.READINESS, periodSeconds=1, initialDelaySeconds=3))
    prober.start()
    await settle()
    for _ in range(4):
        await clock.advance(1)
    assert [t - t0 for _, t in script.calls] == [3, 4]
    prober.stop()


async def test_errored_check_is_retried_and_thrown_away():
    clock = FakeClock()
    calls = []

    async def check(s):
        calls.append(s.kind)
        return pr.Outcome.UNKNOWN, "", "container not running"

    events, results = [], []
    prober = ContainerProber({pr.LIVENESS: spec(periodSeconds=1, failureThreshold=1)}, clock, clock.now(), check,
                             on_event=lambda r, m: events.append(m), on_result=lambda k, r: results.append(r))
    prober.start()
    await settle()
    await clock.advance(1)
    assert len(calls) == 3 and results == []
    assert events == ["Liveness probe errored and resulted in unknown state: container not running"]
    prober.stop()


async def test_run_check_exec():
    clock = FakeClock()

    async def exec_fn(argv, timeout):
        assert timeout == 1
        if argv[0] == "slow":
            raise TimeoutError
        return (0 if argv == ["ok", "v1"] else 3), b"out"

    cspec = {"name": "c", "env": [{"name": "V", "value": "v1"}, {"name": "F", "valueFrom": {"fieldRef": {}}}]}
    ok = spec(exec={"command": ["ok", "$(V)"]})
    assert await run_check(ok, cspec, "127.0.0.1", exec_fn, clock) == (pr.Outcome.SUCCESS, "out", None)
    bad = spec(exec={"command": ["bad", "$(F)"]})
    assert await run_check(bad, cspec, "127.0.0.1", exec_fn, clock) == (pr.Outcome.FAILURE, "out", None)
    slow = spec(exec={"command": ["slow", "x"]})
    assert await run_check(slow, cspec, "127.0.0.1", exec_fn, clock) == (
        pr.Outcome.FAILURE, 'command "slow x" timed out', None)


async def test_a_check_that_raises_counts_as_errored_and_probing_goes_on():
    clock = FakeClock()
    calls = []

    async def check(s):
        calls.append(clock.now())
        raise RuntimeError("boom")

    events = []
    prober = ContainerProber({pr.READINESS: spec(pr.READINESS, periodSeconds=1)}, clock, clock.now(), check,
                             on_event=lambda r, m: events.append(m), on_result=lambda k, r: None)
    prober.start()
    await settle()
    await clock.advance(1)
    assert len(calls) == 6  # three tries at each of two ticks: the loop lives on
    assert events[0] == "Readiness probe errored and resulted in unknown state: boom"
    prober.stop()
