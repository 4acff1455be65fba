"""The server's collector policy: survivors of full collections are frozen so the next one
visits only what became long-lived since; they are thawed once the process has doubled."""

import gc

from jobplane import gcpolicy

MIB = 2**20


def test_should_thaw_when_the_heap_doubled_and_grew_enough():
    assert not gcpolicy.should_thaw(size=900 * MIB, baseline=600 * MIB)
    assert gcpolicy.should_thaw(size=1200 * MIB, baseline=600 * MIB)
    # a small heap waits for the minimum growth, not for doubling
    assert not gcpolicy.should_thaw(size=80 * MIB, baseline=30 * MIB)
    assert gcpolicy.should_thaw(size=100 * MIB, baseline=30 * MIB)


def test_heap_bytes_is_the_resident_size():
    assert 10 * MIB < gcpolicy.heap_bytes() < 64 * 1024 * MIB


def test_full_collections_freeze_their_survivors_and_uninstall_restores():
    before = gc.get_threshold()
    restore = gcpolicy.install()
    try:
        assert gc.get_threshold() == (gcpolicy.YOUNG_THRESHOLD, *before[1:])  # young collections rarer
        at_start = gc.get_freeze_count()
        assert at_start > 0  # what startup built is frozen
        keep = [{"n": [i]} for i in range(5000)]  # noqa: F841 - long-lived, tracked
        gc.collect()  # a full collection: its survivors join the frozen set
        assert gc.get_freeze_count() >= at_start + 10_000
    finally:
        restore()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert all(getattr(cb, "__self__", None).__class__.__name__ != "_Policy" for cb in gc.callbacks)


def test_a_thaw_lets_the_next_full_collection_visit_everything():
    size = [100 * MIB]
    policy = gcpolicy._Policy(measure=lambda: size[0])
    try:
        policy.on_gc("stop", {"generation": 2})  # no growth: survivors frozen, nothing thawed
        assert not policy.thawed and gc.get_freeze_count() > 0
        size[0] = 300 * MIB
        policy.on_gc("stop", {"generation": 1})  # younger collections change nothing
        assert not policy.thawed
        policy.on_gc("stop", {"generation": 2})  # grew past double: thawed for the next one
        assert policy.thawed and gc.get_freeze_count() == 0
        policy.on_gc("stop", {"generation": 2})  # the complete collection: frozen, new baseline
        assert not policy.thawed and policy.baseline == 300 * MIB and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
