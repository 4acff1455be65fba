"""EventRecorder: core/v1 Events with upstream's fields and aggregation.

Contract (signatures fixed):
* ``EventRecorder(client, component, clock, host="")``
* ``event(obj, type_, reason, message)``: non-blocking (schedules the write); an Event
  with ``involvedObject{kind, namespace, name, uid, apiVersion, resourceVersion}``,
  ``reason``, ``message``, ``type`` (Normal/Warning), ``source.component`` (+host),
  ``firstTimestamp``, ``lastTimestamp``, ``count``, ``reportingComponent``,
  ``metadata.name = <obj name>.<hex unix-nanos>`` in the object's namespace (or
  ``default`` for cluster-scoped). A repeat of the same (object, type, reason, message)
  increments ``count`` and ``lastTimestamp`` of the existing Event instead.
* ``await flush()``: wait for pending writes (tests).
"""

from __future__ import annotations
