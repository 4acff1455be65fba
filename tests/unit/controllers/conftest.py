"""Controllers driven through the real service: InProcessClient(ApiService(MemoryStore()))."""

import pytest

from jobplane.client.informer import SharedInformerFactory


@pytest.fixture
def client(inproc):
    return inproc


@pytest.fixture
async def informers(client, clock):
    factory = SharedInformerFactory(client, clock)
    yield factory
    await factory.stop_all()
