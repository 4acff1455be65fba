"""Fixtures: the Job controller against InProcessClient(ApiService(MemoryStore())) on a
FakeClock."""

from __future__ import annotations

import pytest
from jobctl_helpers import Env

from jobplane.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(data_dir="/nonexistent")  # type: ignore[arg-type]


@pytest.fixture
async def env(clock, settings, inproc):
    e = Env(inproc, clock, settings)
    await e.start()
    yield e
    await e.stop()
