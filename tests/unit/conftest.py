"""Shared unit-test fixtures: the real API stack in memory,
InProcessClient(ApiService(MemoryStore())), on a FakeClock."""

from __future__ import annotations

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
