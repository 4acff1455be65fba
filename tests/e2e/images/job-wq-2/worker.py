"""A worker of the Redis work-queue task ("Fine Parallel Processing Using a Work Queue"),
written for jobplane's e2e test: the same reliable-queue protocol and the same lines per item
as the task's worker, with Debian's python3-redis.

The queue ``job2`` is a Redis list. A worker leases an item by moving it atomically from the
list to ``job2:processing`` (BRPOPLPUSH) and recording a lease key
``job2:leased_by_session:<sha224 of the item>`` that expires after the lease time and names its
session; completing the item removes it from the processing list and drops the lease. The queue
is empty, and the worker exits 0, when neither list holds anything: an item another worker
still works on keeps everyone waiting until it is completed, so no item is lost.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import redis

HOST = "redis"  # the Service's name, from the pod's /etc/hosts
QUEUE = "job2"
LEASE_SECONDS = 10
WAIT_SECONDS = 2
WORK_SECONDS = 1.0  # the task sleeps 10 s per item; the protocol does not depend on it


class WorkQueue:
    """One session's view of a finite work queue (items are unique strings)."""

    def __init__(self, db: redis.Redis, name: str) -> None:
        self.db = db
        self.main = name
        self.processing = f"{name}:processing"
        self.lease_prefix = f"{name}:leased_by_session:"
        self.session = str(uuid.uuid4())

    def empty(self) -> bool:
        """Nothing waiting and nothing being worked on (one round trip)."""
        pipe = self.db.pipeline(transaction=False)
        pipe.llen(self.main)
        pipe.llen(self.processing)
        waiting, working = pipe.execute()
        return waiting == 0 and working == 0

    def lease(self, seconds: int, wait: int) -> bytes | None:
        """The next item, moved to the processing list and leased to this session; None when
        none came within ``wait`` seconds."""
        item = self.db.brpoplpush(self.main, self.processing, timeout=wait)
        if item is not None:
            self.db.set(self._lease_key(item), self.session, ex=seconds)
        return item

    def complete(self, item: bytes) -> None:
        self.db.lrem(self.processing, 0, item)
        self.db.delete(self._lease_key(item))

    def _lease_key(self, item: bytes) -> str:
        return self.lease_prefix + hashlib.sha224(item).hexdigest()


def main() -> None:
    queue = WorkQueue(redis.Redis(host=HOST), QUEUE)
    print(f"Worker with sessionID: {queue.session}", flush=True)
    print(f"Initial queue state: empty={queue.empty()}", flush=True)
    while not queue.empty():
        item = queue.lease(LEASE_SECONDS, WAIT_SECONDS)
        if item is None:
            print("Waiting for work", flush=True)
            continue
        print(f"Working on {item.decode()}", flush=True)
        time.sleep(WORK_SECONDS)  # the work itself
        queue.complete(item)
    print("Queue empty, exiting", flush=True)


if __name__ == "__main__":
    main()
