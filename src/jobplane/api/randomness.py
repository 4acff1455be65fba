"""Cryptographic randomness for the per-write hot path: UIDs, generated names, token ids.

Why a pool: ``os.urandom`` releases the GIL, and on the server's event loop every release
while another thread wants the GIL (the SQLite commit thread, file work in the default
executor) costs the loop a wait to get it back: ``uuid.uuid4`` behind each created object was
7 % of the loop's samples at 100 pods/s (bench/RESULTS.md §16b). Drawing 4 KiB at a time makes
that one release per 256 UIDs. The bytes are still the kernel's CSPRNG output, each handed out
once: a lock guards the pool (uncontended, it never releases the GIL) and a forked child
starts with an empty pool of its own.
"""

from __future__ import annotations

import os
import threading

POOL_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_pos = 0


def _reset_after_fork() -> None:
    global _lock, _pool, _pos
    _lock, _pool, _pos = threading.Lock(), b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)


def token_bytes(n: int) -> bytes:
    """``n`` random bytes (``os.urandom``'s, drawn in bulk)."""
    global _pool, _pos
    if n > POOL_BYTES // 4:
        return os.urandom(n)
    with _lock:
        if _pos + n > len(_pool):
            _pool, _pos = os.urandom(POOL_BYTES), 0
        out = _pool[_pos:_pos + n]
        _pos += n
    return out


def uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID in its canonical text form, as
    ``str(uuid.uuid4())``."""
    b = bytearray(token_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def choices(alphabet: str, k: int) -> str:
    """``k`` characters drawn uniformly from ``alphabet`` (at most 256 characters): bytes at
    or above the largest multiple of its length are skipped, so none is favoured."""
    size = len(alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < k:
        out.extend(alphabet[b % size] for b in token_bytes(2 * k) if b < limit)
    return "".join(out[:k])
