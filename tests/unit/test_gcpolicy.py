"""The server's collector policy: survivors of full collections are frozen so the next one
visits only what became long-lived since; the frozen set is thawed once it has doubled."""

import gc

from jobplane import gcpolicy


def test_should_thaw_when_the_frozen_set_doubled_and_grew_enough():
    assert not gcpolicy.should_thaw(frozen=1_000_000, baseline=600_000)
    assert gcpolicy.should_thaw(frozen=1_200_000, baseline=600_000)
    # a small heap waits for the minimum growth, not for doubling
    assert not gcpolicy.should_thaw(frozen=150_000, baseline=50_000)
    assert gcpolicy.should_thaw(frozen=250_000, baseline=50_000)


def test_full_collections_freeze_their_survivors_and_uninstall_restores():
    restore = gcpolicy.install()
    try:
        at_start = gc.get_freeze_count()
        assert at_start > 0  # what startup built is frozen
        keep = [{"n": [i]} for i in range(5000)]  # long-lived, tracked
        gc.collect()  # a full collection: its survivors join the frozen set
        assert gc.get_freeze_count() >= at_start + 10_000
        assert not any(gc.is_tracked(x) and x is keep for x in gc.get_objects(generation=2))
    finally:
        restore()
    assert gc.get_freeze_count() == 0
    assert all(getattr(cb, "__self__", None).__class__.__name__ != "_Policy" for cb in gc.callbacks)


def test_a_thaw_lets_the_next_full_collection_visit_everything():
    policy = gcpolicy._Policy()
    gc.freeze()
    try:
        policy.baseline = 0
        big = [[i] for i in range(gcpolicy.MIN_THAW + 10)]  # noqa: F841 - kept alive on purpose
        policy.on_gc("stop", {"generation": 2})  # grew past the minimum: thawed
        assert policy.thawed and gc.get_freeze_count() == 0
        policy.on_gc("stop", {"generation": 2})  # the full collection happened: frozen again
        assert not policy.thawed and policy.baseline == gc.get_freeze_count() > gcpolicy.MIN_THAW
        policy.on_gc("stop", {"generation": 1})  # younger collections change nothing
        assert policy.baseline == gc.get_freeze_count()
    finally:
        gc.unfreeze()
