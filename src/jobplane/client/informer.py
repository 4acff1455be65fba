"""Informer: list + watch + a local indexed cache, with event handlers (client-go's
SharedIndexInformer). Re-lists on 410 Expired and on a dropped watch.

Contract (signatures fixed):
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

``SharedInformerFactory(client, clock)``: ``.informer(resource) -> Informer`` returns one
shared all-namespaces informer per resource; ``await start_all()`` / ``await stop_all()``.
"""

from __future__ import annotations
