"""Informer: list + watch + a local indexed cache, with event handlers (client-go's
SharedIndexInformer). Re-lists on 410 Expired and on a dropped watch.

Interface:
* ``Informer(client, resource, namespace=None, *, label_selector=None, field_selector=None, clock=None)``
* ``add_handler(on_add=None, on_update=None, on_delete=None)``: plain (sync) callables
  ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``; called in the event loop in
  watch order. Handlers added after start get synthetic on_add calls for cached objects.
* ``add_index(name, fn)``: ``fn(obj) -> list[str]``; ``by_index(name, value) -> list[obj]``.
  Built-in index "namespace".
* ``await start()``: does the initial list, fills the cache, calls handlers, starts the
  watch loop in a background task, returns once synced. ``await stop()``.
* ``get(namespace, name)`` / ``get_key("ns/name")`` / ``list(namespace=None)`` — cache reads,
  no I/O. Cached objects must not be mutated by callers (copy first).
* ``has_synced`` property.
* Optional ``transform`` (client-go's ``SetTransform``; keyword argument or
  ``set_transform(fn)`` before start): ``fn(obj) -> obj`` runs on every listed and watched
  object before it is cached and handed to handlers, so the cache and the handlers see
  only what it returns. It must not mutate its argument (watch events are shared).

``SharedInformerFactory(client, clock)``: ``.informer(resource) -> Informer`` returns one
shared all-namespaces informer per resource; ``await start_all()`` / ``await stop_all()``.
Its pod informer compacts Succeeded/Failed pods (``client.pod_transform``); pass
``transforms={}`` to turn that off.

Details worth knowing:
* The cache is updated *before* handlers run, so a handler reading the cache sees the
  event's state (as in client-go).
* A re-list (after 410, or after a watch error) diffs against the cache: new objects give
  ``on_add``, changed ones (other resourceVersion) ``on_update``, vanished ones
  ``on_delete`` with the last cached state.
* A watch that ends cleanly is resumed from the last seen resourceVersion without a list.
* ``start()`` is idempotent: a second call waits for the first sync.
* Handler exceptions are logged and never stop the informer.
* Objects that do not decode as their kind (a wrong-typed field written by an older
  server into the store) are skipped with one warning per object: they never reach the
  cache or the handlers, so no controller or agent crash-loops on them. A cached good
  version stays (it is not reported deleted); a later good version is taken again.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable, Iterable
from typing import Any

from jobplane.api import decode
from jobplane.api.errors import StatusError
from jobplane.api.registry import resolve
from jobplane.client.base import Client
from jobplane.client.pod_transform import compact_terminal_pod
from jobplane.clock import Clock

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFn = Callable[[Obj], list[str]]

NAMESPACE_INDEX = "namespace"
# Back-off between failed list/watch attempts (client-go: 800 ms doubling to 30 s).
_RETRY_BASE = 0.8
_RETRY_MAX = 30.0


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def _namespace_index(obj: Obj) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


class _Handler:
    __slots__ = ("on_add", "on_update", "on_delete")

    def __init__(self, on_add: Callable[[Obj], Any] | None, on_update: Callable[[Obj, Obj], Any] | None,
                 on_delete: Callable[[Obj], Any] | None) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete


class Informer:
    def __init__(self, client: Client, resource: str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 clock: Clock | None = None, transform: Callable[[Obj], Obj] | None = None) -> None:
        self.client = client
        self.transform = transform
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.clock = clock or Clock()
        self._cache: dict[str, Obj] = {}
        self._handlers: builtins.list[_Handler] = []
        self._index_fns: dict[str, IndexFn] = {NAMESPACE_INDEX: _namespace_index}
        # index name -> value -> its keys: the key itself while it is the only one (the
        # garbage collector's uid index has one per pod: a set each was 5 MB at 12,500),
        # else a set. What a cached object was indexed under is computed again from it when
        # it leaves (cached objects are never mutated, index functions are pure): keeping
        # those values per key cost ~0.9 KB a pod with the controllers' 8 pod indexes.
        self._indices: dict[str, dict[str, str | set[str]]] = {NAMESPACE_INDEX: {}}
        self._resource_version = ""
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self.relists = 0  # number of lists done (1 after start); handy for tests and metrics
        self._checker = _checker_for(resource)
        typed_after = getattr(client, "typed_after", None)
        self._typed_after: int | None = typed_after() if callable(typed_after) else None
        self.malformed: dict[str, str] = {}  # key -> resourceVersion of objects skipped as malformed

    # -- handlers and indices ----------------------------------------------------------
    def add_handler(self, on_add: Callable[[Obj], Any] | None = None,
                    on_update: Callable[[Obj, Obj], Any] | None = None,
                    on_delete: Callable[[Obj], Any] | None = None) -> None:
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set() and on_add is not None:
            for obj in list(self._cache.values()):
                self._call(on_add, obj)

    def set_transform(self, fn: Callable[[Obj], Obj] | None) -> None:
        """client-go's ``SetTransform``: only before start (the cache would mix both forms)."""
        if self._task is not None:
            raise RuntimeError("informer has already started")
        self.transform = fn

    def add_index(self, name: str, fn: IndexFn) -> None:
        self._index_fns[name] = fn
        index: dict[str, str | set[str]] = {}
        self._indices[name] = index
        for key, obj in self._cache.items():
            for v in self._safe_index(fn, obj):
                _index_add(index, v, key)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return [self._cache[k] for k in self.index_keys(name, value)]

    def index_values(self, name: str) -> builtins.list[str]:
        """The values of index ``name`` that some cached object has."""
        return list(self._indices[name])

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        keys = self._indices[name].get(value)
        if keys is None:
            return []
        return [keys] if isinstance(keys, str) else sorted(keys)

    # -- cache reads -------------------------------------------------------------------
    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def get_key(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        if namespace is None:
            return list(self._cache.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen by list or watch."""
        return self._resource_version

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        async with self._start_lock:
            if self._task is None:
                await self._list_and_replace()
                self._synced.set()
                self._task = asyncio.create_task(self._run(), name=f"informer:{self.resource}")
        await self._synced.wait()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass

    # -- list / watch ------------------------------------------------------------------
    async def _list_and_replace(self) -> None:
        result = await self.client.list(self.resource, self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector)
        self.relists += 1
        self._replace(result.get("items") or [], (result.get("metadata") or {}).get("resourceVersion") or "")

    def _well_typed(self, obj: Obj) -> bool:
        """False (and one warning per object) when ``obj`` does not decode as its kind."""
        if self._checker is None:
            return True
        try:
            self._checker(obj)
        except decode.DecodeError as exc:
            key = object_key(obj)
            if key not in self.malformed:
                log.warning("informer %s: skipping %s, which does not decode: %s", self.resource, key, exc)
            self.malformed[key] = _rv(obj)
            return False
        if self.malformed:
            self.malformed.pop(object_key(obj), None)
        return True

    def _checked_on_write(self, rv: str) -> bool:
        """Whether the object at ``rv`` was type-checked when it was written (a revision this
        process's API service wrote), so decoding it again here cannot fail. Objects stored
        before (by an older server) are checked, here and in every list."""
        typed_after = self._typed_after
        if typed_after is None:
            return False
        try:
            checked = int(rv) > typed_after
        except ValueError:
            return False
        return checked

    def _replace(self, items: Iterable[Obj], resource_version: str) -> None:
        fresh: dict[str, Obj] = {}
        for o in items:
            if self._well_typed(o):
                o = self.transform(o) if self.transform is not None else o
                fresh[object_key(o)] = o
            elif object_key(o) in self._cache:
                fresh[object_key(o)] = self._cache[object_key(o)]  # keep the last good version
        for key in [k for k in self._cache if k not in fresh]:
            old = self._cache_delete(key)
            if old is not None:
                self._dispatch_delete(old)
        for key, obj in fresh.items():
            old = self._cache.get(key)
            self._cache_put(key, obj)
            if old is None:
                self._dispatch_add(obj)
            elif _rv(old) != _rv(obj):
                self._dispatch_update(old, obj)
        self._resource_version = resource_version

    async def _run(self) -> None:
        delay = _RETRY_BASE
        need_list = False
        while True:
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                if await self._watch_once():
                    delay = _RETRY_BASE
                    await asyncio.sleep(0)
                else:
                    # An empty stream that ended at once: do not spin against a closing server.
                    await self.clock.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                # A clean end of the stream (timeout, server closed) resumes from the last RV.
            except asyncio.CancelledError:
                raise
            except StatusError as exc:
                if exc.code == 410:
                    log.debug("informer %s: watch expired (%s), re-listing", self.resource, exc.message)
                    need_list = True
                    continue
                log.warning("informer %s: watch failed: %s", self.resource, exc)
                need_list = True
                await self.clock.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
            except Exception as exc:  # noqa: BLE001 - keep the cache alive whatever happens
                log.warning("informer %s: watch failed: %r", self.resource, exc)
                need_list = True
                await self.clock.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    async def _watch_once(self) -> int:
        """Watch until the stream ends; returns the number of events seen."""
        count = 0
        # Remote transports bound each watch (client-go: 5-10 min) so a dead connection is noticed.
        timeout_fn = getattr(self.client, "informer_watch_timeout", None)
        stream = self.client.watch(self.resource, self.namespace, resource_version=self._resource_version,
                                   label_selector=self.label_selector, field_selector=self.field_selector,
                                   allow_bookmarks=True, timeout_seconds=timeout_fn() if timeout_fn else None)
        try:
            async for etype, obj in stream:
                count += 1
                self._apply_event(etype, obj)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001
                    pass
        return count

    def _apply_event(self, etype: str, obj: Obj) -> None:
        rv = _rv(obj)
        if etype == "BOOKMARK":
            if rv:
                self._resource_version = rv
            return
        if etype == "ERROR":
            raise StatusError.from_status(obj)
        if etype != "DELETED" and self._checked_on_write(rv):
            if self.malformed:
                self.malformed.pop(object_key(obj), None)
        elif etype != "DELETED" and not self._well_typed(obj):
            if rv:
                self._resource_version = rv
            return
        if self.transform is not None:
            obj = self.transform(obj)
        key = object_key(obj)
        if etype in ("ADDED", "MODIFIED"):
            old = self._cache.get(key)
            self._cache_put(key, obj)
            if rv:
                self._resource_version = rv
            if old is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(old, obj)
        elif etype == "DELETED":
            old = self._cache_delete(key)
            if rv:
                self._resource_version = rv
            self._dispatch_delete(obj if obj.get("metadata") else (old or obj))
        else:
            log.debug("informer %s: ignoring event type %s", self.resource, etype)

    # -- cache + index maintenance -----------------------------------------------------
    def _cache_put(self, key: str, obj: Obj) -> None:
        old = self._cache.get(key)
        self._cache[key] = obj
        indices = self._indices
        for name, fn in self._index_fns.items():
            values = self._safe_index(fn, obj)
            if old is not None:
                before = self._safe_index(fn, old)
                if before == values:
                    continue
                self._unindex(indices[name], key, before)
            index = indices[name]
            for v in values:
                _index_add(index, v, key)

    def _cache_delete(self, key: str) -> Obj | None:
        old = self._cache.pop(key, None)
        if old is not None:
            for name, fn in self._index_fns.items():
                self._unindex(self._indices[name], key, self._safe_index(fn, old))
        return old

    @staticmethod
    def _unindex(index: dict[str, str | set[str]], key: str, values: builtins.list[str]) -> None:
        for v in values:
            keys = index.get(v)
            if keys is None:
                continue
            if isinstance(keys, str):
                if keys == key:
                    del index[v]
                continue
            keys.discard(key)
            if len(keys) == 1:
                index[v] = next(iter(keys))
            elif not keys:
                del index[v]

    @staticmethod
    def _safe_index(fn: IndexFn, obj: Obj) -> builtins.list[str]:
        try:
            return list(fn(obj) or ())
        except Exception:  # noqa: BLE001 - a bad index function must not break the cache
            log.exception("index function failed")
            return []

    # -- dispatch ----------------------------------------------------------------------
    @staticmethod
    def _call(fn: Callable[..., Any], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - handlers must not stop the informer
            log.exception("informer handler failed")

    def _dispatch_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _dispatch_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)


def _index_add(index: dict[str, str | set[str]], value: str, key: str) -> None:
    keys = index.get(value)
    if keys is None:
        index[value] = key
    elif isinstance(keys, str):
        if keys != key:
            index[value] = {keys, key}
    else:
        keys.add(key)


def _checker_for(resource: str) -> decode.Checker | None:
    try:
        info = resolve(resource)
    except KeyError:
        return None
    return decode.checker_for(info.group, info.version, info.kind)


class SharedInformerFactory:
    """One all-namespaces informer per resource, shared by every controller."""

    def __init__(self, client: Client, clock: Clock | None = None, *,
                 transforms: dict[str, Callable[[Obj], Obj]] | None = None) -> None:
        """``transforms``: resource -> transform for its informer (default: compact terminal pods)."""
        self.client = client
        self.clock = clock or Clock()
        self._informers: dict[str, Informer] = {}
        if transforms is None:
            transforms = {"pods": compact_terminal_pod}
        self._transforms = {self._canonical(r): fn for r, fn in transforms.items()}

    @staticmethod
    def _canonical(resource: str) -> str:
        try:
            info = resolve(resource)
        except KeyError:
            return resource
        return f"{info.group_resource}/{info.version}"

    def informer(self, resource: str) -> Informer:
        key = self._canonical(resource)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, clock=self.clock, transform=self._transforms.get(key))
            self._informers[key] = inf
        return inf

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def start_all(self) -> None:
        """Start every informer made so far (idempotent) and wait until all are synced."""
        await asyncio.gather(*(inf.start() for inf in list(self._informers.values())))

    async def stop_all(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in list(self._informers.values())))
