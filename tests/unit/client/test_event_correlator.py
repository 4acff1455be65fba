"""client-go EventCorrelator semantics: aggregation after 10 distinct messages, spam bucket."""

from __future__ import annotations

from jobplane.client.event_correlator import COMBINED_PREFIX, EventCorrelator
from jobplane.client.events import EventRecorder
from jobplane.clock import FakeClock

SRC = ("job-controller", "")
JOB = {"kind": "Job", "namespace": "default", "name": "j", "uid": "u1", "apiVersion": "batch/v1"}


def test_first_nine_distinct_messages_are_kept_then_combined() -> None:
    c = EventCorrelator()
    out = [c.correlate(SRC, JOB, "Normal", "SuccessfulCreate", f"Created pod: p{i}", 0.0) for i in range(12)]
    assert [o.message for o in out[:9]] == [f"Created pod: p{i}" for i in range(9)]
    assert len({o.key for o in out[:9]}) == 9
    assert out[9].message == COMBINED_PREFIX + "Created pod: p9"
    assert out[10].message == COMBINED_PREFIX + "Created pod: p10"
    assert out[9].key == out[10].key == out[11].key  # one combined Event, counted up


def test_aggregation_window_resets_after_ten_minutes() -> None:
    c = EventCorrelator()
    for i in range(9):
        c.correlate(SRC, JOB, "Normal", "SuccessfulCreate", f"m{i}", 0.0)
    fresh = c.correlate(SRC, JOB, "Normal", "SuccessfulCreate", "m9", 601.0)
    assert fresh is not None and fresh.message == "m9"


def test_spam_filter_burst_25_then_one_per_five_minutes() -> None:
    c = EventCorrelator()
    results = [c.correlate(SRC, JOB, "Normal", "R", "same", 0.0) for _ in range(30)]
    assert sum(r is not None for r in results) == 25
    assert c.correlate(SRC, JOB, "Normal", "R", "same", 299.0) is None
    assert c.correlate(SRC, JOB, "Normal", "R", "same", 300.5) is not None
    other = dict(JOB, name="k", uid="u2")
    assert c.correlate(SRC, other, "Normal", "R", "same", 300.5) is not None  # per object


async def test_recorder_writes_a_bounded_number_of_events_for_many_pods() -> None:
    class Sink:
        def __init__(self) -> None:
            self.created: list[dict] = []
            self.patches: list[tuple[str, dict]] = []

        async def create(self, resource: str, body: dict, namespace: str | None = None) -> dict:
            self.created.append(body)
            return body

        async def patch(self, resource: str, name: str, patch: dict, namespace: str | None = None) -> dict:
            self.patches.append((name, patch))
            return {}

    sink = Sink()
    rec = EventRecorder(sink, "job-controller", FakeClock())
    job = {"kind": "Job", "apiVersion": "batch/v1",
           "metadata": {"name": "j", "namespace": "default", "uid": "u1"}}
    for i in range(2000):
        rec.event(job, "Normal", "SuccessfulCreate", f"Created pod: j-{i}")
    await rec.flush()
    assert len(sink.created) == 10  # 9 individual + 1 combined
    # (events of different aggregation keys are written side by side: order across keys is free)
    combined = [c["message"] for c in sink.created if c["message"].startswith(COMBINED_PREFIX)]
    assert combined == [COMBINED_PREFIX + "Created pod: j-9"]
    assert len(sink.patches) == 15  # the rest of the burst of 25 bumps the combined one
    assert sink.patches[-1][1]["count"] == 16
    await rec.close()
