"""The server's collector policy: survivors of older collections are frozen so automatic
collections visit only the young generations; complete collections run when the process has
grown, preferably while it is idle, and are forced at a growth that adapts to what they find."""

import asyncio
import gc

import pytest

from jobplane import gcpolicy

MIB = 2**20


def test_grown_needs_the_factor_and_the_minimum_growth():
    assert not gcpolicy.grown(size=900 * MIB, baseline=600 * MIB, factor=2.0)
    assert gcpolicy.grown(size=1200 * MIB, baseline=600 * MIB, factor=2.0)
    assert not gcpolicy.grown(size=2000 * MIB, baseline=600 * MIB, factor=4.0)
    # a small heap waits for the minimum growth, not for doubling
    assert not gcpolicy.grown(size=80 * MIB, baseline=30 * MIB, factor=2.0)
    assert gcpolicy.grown(size=100 * MIB, baseline=30 * MIB, factor=2.0)


@pytest.mark.parametrize(("factor", "freed", "expected"), [
    (4.0, 0.0, 8.0),     # nothing was waiting in frozen cycles: wait longer next time
    (4.0, 0.019, 8.0),
    (4.0, 0.05, 4.0),    # some: keep the bound
    (4.0, 0.10, 2.0),    # a tenth of the heap was garbage: collect sooner
    (2.0, 0.5, 2.0),     # never below doubling
    (64.0, 0.0, 64.0),   # nor above the cap
])
def test_the_force_factor_follows_what_complete_collections_free(factor, freed, expected):
    assert gcpolicy.next_force_factor(factor, freed) == expected


@pytest.mark.parametrize(("cpu", "wall", "idle"), [(0.1, 1.0, True), (0.25, 1.0, True), (0.3, 1.0, False),
                                                   (0.0, 0.0, False)])
def test_mostly_idle(cpu, wall, idle):
    assert gcpolicy.mostly_idle(cpu, wall) is idle


def test_heap_bytes_is_the_resident_size():
    assert 10 * MIB < gcpolicy.heap_bytes() < 64 * 1024 * MIB


def test_older_collections_freeze_their_survivors_and_uninstall_restores():
    before = gc.get_threshold()
    restore = gcpolicy.install()  # no running loop: the freezing only
    try:
        assert gc.get_threshold() == (gcpolicy.YOUNG_THRESHOLD, *before[1:])  # young collections rarer
        at_start = gc.get_freeze_count()
        assert at_start > 0  # what startup built is frozen
        keep = [{"n": [i]} for i in range(5000)]  # noqa: F841 - long-lived, tracked
        gc.collect(1)  # a middle-generation collection: its survivors join the frozen set too
        assert gc.get_freeze_count() >= at_start + 10_000
        assert len(gc.get_objects(2)) < 1000  # generation 2 stays (nearly) empty
    finally:
        restore()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert all(getattr(cb, "__self__", None).__class__.__name__ != "Policy" for cb in gc.callbacks)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_complete_collection_reclaims_frozen_cycles_and_adapts():
    size = [100 * MIB]
    blocks = iter([1000, 1000, 1000, 500])  # before/after of two complete collections
    policy = gcpolicy.Policy(measure=lambda: size[0], blocks=lambda: next(blocks))
    try:
        garbage = [Cycle() for _ in range(100)]
        gc.collect()
        policy.on_gc("stop", {"generation": 2})  # survivors (the cycles, still referenced) frozen
        del garbage  # the cycles are now garbage, but frozen: no automatic collection sees them
        assert gc.collect() == 0
        policy.on_gc("stop", {"generation": 2})
        assert policy.complete() >= 100  # thawed: found
        assert policy.force_factor == 2 * gcpolicy.FORCE_FACTOR  # freed 0 % of blocks: wait longer next time
        assert gc.get_freeze_count() > 0  # survivors frozen again
        size[0] = 300 * MIB
        policy.complete()
        assert policy.baseline == 300 * MIB
        assert policy.force_factor == gcpolicy.FORCE_FACTOR  # freed half the blocks: collect sooner
    finally:
        gc.unfreeze()


def test_growth_past_the_force_factor_schedules_a_complete_collection_on_the_loop():
    async def scenario() -> int:
        size = [100 * MIB]
        policy = gcpolicy.Policy(measure=lambda: size[0])
        policy.loop = asyncio.get_running_loop()
        try:
            size[0] = 100 * MIB * gcpolicy.FORCE_FACTOR - MIB  # just below the force factor
            policy.on_gc("stop", {"generation": 1})
            await asyncio.sleep(0)
            assert policy.completed == 0
            size[0] = int(100 * MIB * gcpolicy.FORCE_FACTOR)
            policy.on_gc("stop", {"generation": 0})  # young collections decide nothing
            await asyncio.sleep(0)
            assert policy.completed == 0
            policy.on_gc("stop", {"generation": 1})
            policy.on_gc("stop", {"generation": 2})  # scheduled once
            await asyncio.sleep(0)
            return policy.completed
        finally:
            gc.unfreeze()

    assert asyncio.run(scenario()) == 1


def test_an_idle_process_collects_once_it_has_doubled():
    size = [100 * MIB]
    policy = gcpolicy.Policy(measure=lambda: size[0])
    assert not policy.due_when_idle(0.0, 1.0)  # idle, not grown
    size[0] = 250 * MIB
    assert not policy.due_when_idle(0.9, 1.0)  # grown, busy
    assert policy.due_when_idle(0.1, 1.0)
    assert not policy.due_when_idle(0.1, 1.0, late=0.2)  # starved by others, not idle


def test_the_idle_task_runs_the_complete_collection(monkeypatch):
    monkeypatch.setattr(gcpolicy, "IDLE_LATENESS", 1.0)  # a loaded test machine wakes late
    async def scenario() -> int:
        size = [100 * MIB]
        policy = gcpolicy.Policy(measure=lambda: size[0])
        size[0] = 250 * MIB
        task = asyncio.create_task(policy.run_when_idle(interval=0.01, window=0.03))
        try:
            for _ in range(500):
                await asyncio.sleep(0.01)
                if policy.completed:
                    break
            return policy.completed
        finally:
            task.cancel()
            gc.unfreeze()

    assert asyncio.run(scenario()) == 1  # then the baseline is the new size: not due again
