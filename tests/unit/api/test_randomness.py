"""api.randomness: pooled CSPRNG bytes, UUIDs in uuid4's form, uniform generated names."""

from __future__ import annotations

import collections
import os
import uuid

from jobplane.api import meta, randomness


def test_uuid4_is_a_canonical_version_4_uuid_and_never_repeats():
    seen = set()
    for _ in range(3 * randomness.POOL_BYTES // 16):  # across several pool refills
        text = randomness.uuid4()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 3 * randomness.POOL_BYTES // 16
    assert meta.new_uid() not in seen


def test_token_bytes_hands_each_pooled_byte_out_once():
    parts = [randomness.token_bytes(n) for n in (1, 7, 16, 33, 500) * 20]
    assert [len(p) for p in parts] == [n for n in (1, 7, 16, 33, 500)] * 20
    big = randomness.token_bytes(randomness.POOL_BYTES)  # beyond the pool: straight from the kernel
    assert len(big) == randomness.POOL_BYTES
    # 16-byte draws are distinct (a repeated pool slice would show here)
    sixteen = {randomness.token_bytes(16) for _ in range(1000)}
    assert len(sixteen) == 1000


def test_a_forked_child_does_not_reuse_the_parents_pool():
    randomness.token_bytes(8)  # the pool is filled
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, randomness.token_bytes(32))
        os._exit(0)
    os.close(w)
    child = os.read(r, 32)
    os.close(r)
    os.waitpid(pid, 0)
    assert child != randomness.token_bytes(32)


def test_generated_names_use_the_alphabet_uniformly():
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    counts = collections.Counter(randomness.choices(alphabet, 27_000))
    assert set(counts) == set(alphabet)
    assert all(800 < n < 1200 for n in counts.values())  # 1,000 each expected; 6+ sigma apart
    name = meta.generate_name("job-0-")
    assert name.startswith("job-0-") and len(name) == 11 and all(c in alphabet for c in name[6:])
