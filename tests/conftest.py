"""Fixtures every suite may use: the real API stack in memory,
``InProcessClient(ApiService(MemoryStore()))`` on a ``FakeClock`` (``clock``, ``service``, ``inproc``).

Pods run in a sandbox with their own /tmp: tests that hand a pod a path on the host (a queue
directory, a trace file) need it outside /tmp, so pytest's tmp_path root is /var/tmp (set
before the first tmp_path is made; an explicit PYTEST_DEBUG_TEMPROOT wins)."""

import os

os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/var/tmp")

import pytest

from jobplane.apiserver.service import ApiService
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.storage.memory import MemoryStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(clock) -> ApiService:
    store = MemoryStore()
    await store.start()
    svc = ApiService(store, clock)
    await svc.ensure_default_namespaces()
    yield svc
    await store.close()


@pytest.fixture
def inproc(service) -> InProcessClient:
    return InProcessClient(service)
