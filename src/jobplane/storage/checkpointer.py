"""WAL checkpoints of the SQLite store, on a thread and connection of their own.

SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, and with
``synchronous=NORMAL`` a checkpoint syncs the WAL and the database file: on the benchmark
machine 25-50 ms, every ~50 commits, during which that batch's callers (and everyone queued
behind them) wait. Here the writer's connection never checkpoints; this thread copies the
WAL back into the database file with PASSIVE checkpoints (which never block the writer) at
most every ``interval`` seconds after a commit, so commits only append to the WAL.

SQLite rewinds the WAL when a write begins with every frame already copied back; under
writes with no pause that never happens, so when the WAL has grown past ``restart_frames``
the writer is asked (``restart_wanted``) to run one RESTART checkpoint itself between two
batches: it copies what this thread has not yet copied and rewinds the WAL.

Durability does not change: a commit is in the WAL when it returns, checkpointed or not.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL = 0.5  # seconds between checkpoints while commits keep coming
RESTART_FRAMES = 65_536  # WAL pages (4 KiB each: 256 MiB) before the writer rewinds it


class Checkpointer:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL", interval: float = INTERVAL,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self.path = path
        self.synchronous = synchronous
        self.interval = interval
        self.restart_frames = restart_frames
        self.restart_wanted = False  # read and cleared by the writer thread
        self.checkpoints = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jobplane-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """The writer appended to the WAL (called from the writer thread; cheap)."""
        self._dirty.set()

    def stop(self) -> None:
        """Stop and close the connection (before the writer's close, which checkpoints last)."""
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            while True:
                self._dirty.wait()
                if self._stop.is_set():
                    return
                self._dirty.clear()
                self._checkpoint(conn)
                if self._stop.wait(self.interval):  # at most one checkpoint per interval
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            busy, log_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the writer's commit is unaffected; try again next time
            log.warning("WAL checkpoint failed: %s", exc)
            return
        self.checkpoints += 1
        if not busy and log_frames >= self.restart_frames:
            self.restart_wanted = True
