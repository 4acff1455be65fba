"""Fixtures: the Job controller against InProcessClient(ApiService(MemoryStore())) on a
FakeClock."""

from __future__ import annotations

import pytest
from jobctl_helpers import Env

from jobplane.api import admission
from jobplane.api.registry import NAMESPACES
from jobplane.apiserver.service import ApiService
from jobplane.client.inproc import InProcessClient
from jobplane.clock import FakeClock
from jobplane.settings import Settings
from jobplane.storage.memory import MemoryStore


def _admission_ready() -> bool:
    try:
        admission.admit_create(NAMESPACES, {"metadata": {"name": "x"}})
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - implemented, just unhappy with our probe
        return True
    return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(data_dir="/nonexistent")  # type: ignore[arg-type]


@pytest.fixture
async def env(clock, settings, monkeypatch):
    if not _admission_ready():  # admission not written yet: let everything through
        monkeypatch.setattr(admission, "admit_create", lambda info, obj: [])
        monkeypatch.setattr(admission, "admit_update", lambda info, new, old: [])
        monkeypatch.setattr(admission, "admit_status_update", lambda info, new, old: [])
    store = MemoryStore()
    await store.start()
    service = ApiService(store, clock)
    await service.ensure_default_namespaces()
    e = Env(InProcessClient(service), clock, settings)
    await e.start()
    yield e
    await e.stop()
    await store.close()
