"""apiserver/mirror: the index is listed, follows the watch, and after a watch that ends
(410 Gone) is reset and listed again, then follows from the new list's resourceVersion."""

from __future__ import annotations

import asyncio

from jobplane.aio import cancel_and_wait
from jobplane.api.registry import PODS
from jobplane.apiserver.mirror import mirror


def _pod(name: str, rv: str) -> dict:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}}


class FakeService:
    def __init__(self) -> None:
        self.lists = [{"metadata": {"resourceVersion": "1"}, "items": [_pod("a", "1")]},
                      {"metadata": {"resourceVersion": "9"}, "items": [_pod("b", "9")]}]
        self.watched_from: list[str | None] = []
        self.second_watch = asyncio.Event()

    async def list(self, info, namespace):
        return self.lists.pop(0)

    async def watch(self, info, namespace, resource_version=None):
        self.watched_from.append(resource_version)
        if len(self.watched_from) == 1:
            yield "BOOKMARK", _pod("", "2")
            yield "MODIFIED", _pod("a", "3")
            raise RuntimeError("410 Gone")
        self.second_watch.set()
        await asyncio.Event().wait()


async def test_lists_follows_and_relists_after_the_watch_ends():
    service = FakeService()
    seen: list[tuple[str, str]] = []
    resets: list[int] = []
    task = await mirror(service, PODS, lambda event, obj: seen.append((event, obj["metadata"]["name"])),
                        lambda: resets.append(len(seen)), "test-pods")
    assert seen == [("ADDED", "a")]  # listed before mirror returns
    await asyncio.wait_for(service.second_watch.wait(), 5)
    await cancel_and_wait([task])
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b")]
    assert resets == [2]  # reset once, after the MODIFIED and before the relisted ADDED
    assert service.watched_from == ["1", "9"]  # bookmarks applied nothing; the second watch starts at the relist
