"""History that outlives pods: archive each Job when it finishes (or is deleted unfinished),
keep its record in the store and its pods' logs under ``DIR/history/``, prune by age and
size, and serve both at ``/jobplane/v1/history``.

Why at finish rather than at deletion: a finished Job's pods are about to go (TTL,
podgc, cascading delete, the agent removing their files), so the logs are copied while
they still exist; the record then survives whatever deletes the Job. The archiver reads
the store directly (a watch on the Jobs prefix) and reads logs the way the ``log``
subresource does (local files, or the pod's node).

Authorization seam: every route here reads with the caller's request; today the bearer
token check in ``ApiHandler`` guards it, and an authorizer would check ``get jobs`` in
the record's namespace before ``_serve`` answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web

from jobplane.api import errors, jobhistory, registry
from jobplane.api.meta import parse_time, rfc3339
from jobplane.apiserver import logs
from jobplane.clock import Clock
from jobplane.logstream import TEXT_HEADERS
from jobplane.storage.base import Expired, KeyNotFound, Store
from jobplane.storage.records import JobRecords

if TYPE_CHECKING:
    from jobplane.apiserver.http import ApiHandler

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
PRUNE_INTERVAL = 600.0
CONCURRENT_ARCHIVES = 4
DEFAULT_RETENTION = 7 * 86400.0
DEFAULT_MAX_BYTES = 1 << 30


def _safe(part: str) -> str:
    """A name usable as one path component (object names already are; be sure)."""
    return part.replace("/", "_").replace("\0", "_") or "_"


class Archiver:
    """Watches Jobs; writes a record and copies logs once per Job."""

    def __init__(self, store: Store, history_dir: Path, pods_dir: Path | None, token: str | None,
                 clock: Clock, *, retention: float = DEFAULT_RETENTION, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self.records = JobRecords(store)
        self.history_dir = history_dir
        self.pods_dir = pods_dir
        self.token = token
        self.clock = clock
        self.retention = retention
        self.max_bytes = max_bytes
        self.known: set[str] = set()  # Job uids archived (or being archived)
        self._slots = asyncio.Semaphore(CONCURRENT_ARCHIVES)
        self._pending: set[asyncio.Task] = set()

    # -- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        prune = asyncio.create_task(self._prune_loop())
        try:
            while True:
                rev = await self._catch_up()
                try:
                    async for ev in self.store.watch(registry.JOBS.storage_key_prefix + "/", from_rev=rev):
                        self._on_event(ev.type, ev.object, ev.prev_object)
                except Expired:
                    continue
                await asyncio.sleep(1.0)  # the store closed the watch: start over
        finally:
            prune.cancel()
            for t in list(self._pending):
                t.cancel()

    async def _catch_up(self) -> int:
        """Archive finished Jobs missed while no server watched; returns the revision to watch from."""
        self.known |= {(r.get("job") or {}).get("metadata", {}).get("uid", "") for r in await self.records.list()}
        jobs = await self.store.list(registry.JOBS.storage_key_prefix + "/")
        for job in jobs.items:
            if jobhistory.is_finished(job):
                self._archive_soon(job)
        return jobs.revision

    def _on_event(self, etype: str, job: Obj, prev: Obj | None) -> None:
        if etype == "DELETED":
            self._archive_soon(prev or job)
        elif jobhistory.is_finished(job):
            self._archive_soon(job)

    def _archive_soon(self, job: Obj) -> None:
        uid = (job.get("metadata") or {}).get("uid", "")
        if not uid or uid in self.known:
            return
        self.known.add(uid)
        task = asyncio.create_task(self._archive_guarded(job))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _archive_guarded(self, job: Obj) -> None:
        async with self._slots:
            try:
                await self.archive(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one Job's archive must not stop the others
                log.exception("archiving job %s/%s failed", job["metadata"].get("namespace"),
                              job["metadata"].get("name"))

    # -- one Job ----------------------------------------------------------------------
    def job_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.history_dir / _safe(namespace) / _safe(f"{name}.{uid}")

    async def archive(self, job: Obj) -> bool:
        md = job["metadata"]
        ns, name, uid = md.get("namespace") or "", md["name"], md["uid"]
        folder = self.job_dir(ns, name, uid)
        rows = []
        # One pod decoded at a time: a Job of 100,000 completions still has the ~15,000 pods
        # PodGC keeps, and holding them all decoded cost hundreds of MB at its finish.
        for data in await self._pods_of(ns, uid):
            pod = orjson.loads(data)
            if ((pod.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_UID) != uid:
                continue
            rows.append(jobhistory.pod_row(pod, *await self._save_log(pod, folder)))
            del pod
        record = jobhistory.record_of(job, rows, rfc3339(self.clock.now()))
        lost = [r["name"] for r in record["pods"] if r["log"] is None]
        if lost:
            record["missing"]["logs"] = f"gone before they could be archived: {', '.join(lost[:20])}" + (
                f" and {len(lost) - 20} more" if len(lost) > 20 else "")
        if not rows:
            record["missing"]["pods"] = "the Job's pods were deleted before it was archived"
        stored = await self.records.put(ns, name, uid, record)
        log.debug("archived job %s/%s (%d pods)", ns, name, len(rows))
        return stored

    async def _pods_of(self, namespace: str, uid: str) -> Sequence[bytes]:
        """The stored bytes of the namespace's pods that carry the Job's uid label, found through
        the label index (a store without one ignores the hint and lists the namespace: the
        caller checks the label on each pod it decodes, so no pod is decoded twice)."""
        result = await self.store.list_bytes(registry.PODS.storage_key(namespace, ""),
                                             label_hint={CONTROLLER_UID: uid})
        return cast(Sequence[bytes], result.items)  # list_bytes: JSON bytes, inflated one at a time

    async def _save_log(self, pod: Obj, folder: Path) -> tuple[str | None, int]:
        """Copy each container's current log into ``folder``; (file name, bytes) or (None, 0)."""
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ()]
        chunks: list[bytes] = []
        found = False
        for c in containers:
            data = await self._read_log(pod, c)
            if data is None:
                continue
            found = True
            if len(containers) > 1:
                data = b"".join(f"[{c}] ".encode() + line for line in data.splitlines(keepends=True))
            chunks.append(data)
        if not found:
            return None, 0
        file_name = _safe(pod["metadata"]["name"]) + ".log"
        body = b"".join(chunks)

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            (folder / file_name).write_bytes(body)

        await asyncio.to_thread(write)
        return file_name, len(body)

    async def _read_log(self, pod: Obj, container: str) -> bytes | None:
        opts = logs.LogOptions(container=container)
        try:
            logs.resolve_target(pod, opts)
        except errors.StatusError:
            return None
        try:
            if logs.is_local(self.pods_dir, pod):
                async def gone() -> bool:
                    return False

                assert self.pods_dir is not None
                chunks = logs.stream_log(self.pods_dir, pod, opts, self.clock.now(), gone)
            else:
                endpoint = await self._endpoint(pod)
                if endpoint is None:
                    return None
                target = logs.resolve_target(pod, opts)
                chunks = await logs.open_remote_log(endpoint, pod, target, {}, self.token)
            return b"".join([c async for c in chunks])
        except (errors.StatusError, OSError):
            return None

    async def _endpoint(self, pod: Obj) -> str | None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        try:
            node = await self.store.get(registry.NODES.storage_key(None, node_name))
        except KeyNotFound:
            return None
        return logs.node_endpoint(node)

    # -- retention --------------------------------------------------------------------
    async def _prune_loop(self) -> None:
        while True:
            await self.clock.sleep(PRUNE_INTERVAL)
            with contextlib.suppress(Exception):
                await self.prune()

    async def prune(self) -> list[str]:
        """Delete records (and their logs) past the retention, then oldest first over the size cap."""
        records = await self.records.list()
        by_key = {JobRecords.key_of(r): r for r in records}
        sized = [(k, parse_time(r.get("archivedAt")) or 0.0, jobhistory.record_size(r)) for k, r in by_key.items()]
        doomed = jobhistory.to_prune(sized, self.clock.now(), self.retention, self.max_bytes)
        for key in doomed:
            md = (by_key[key].get("job") or {}).get("metadata") or {}
            await self.records.delete(key)
            folder = self.job_dir(md.get("namespace") or "", md.get("name") or "", md.get("uid") or "")
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return doomed


# -- HTTP ---------------------------------------------------------------------------------

def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), headers={"Content-Type": "application/json"})


def summary_json(record: Obj) -> Obj:
    s = jobhistory.summarize(record)
    return {"namespace": s.namespace, "name": s.name, "uid": s.uid, "outcome": s.outcome, "reason": s.reason,
            "completions": s.completions, "succeeded": s.succeeded, "failed": s.failed, "pods": s.pods,
            "start": rfc3339(s.start) if s.start is not None else None,
            "end": rfc3339(s.end) if s.end is not None else None, "elapsedSeconds": s.elapsed,
            "exitCode": s.exit_code, "cronjob": s.cronjob, "archivedAt": record.get("archivedAt")}


class HistoryRoutes:
    """``GET /jobplane/v1/history[?namespace=&since=SECONDS]`` (summaries),
    ``.../history/NS/NAME`` (full records) and ``.../history/NS/NAME/log[?index=&uid=]``."""

    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed",
                                     "the server does not allow this method on the requested resource")
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["jobplane", "v1", "history"] or len(parts) > 6:
            raise errors.resource_not_found_path()
        q = request.query
        if len(parts) == 3:
            return _json({"items": await self.summaries(q.get("namespace") or None, q.get("since"))})
        if len(parts) < 5:
            raise errors.resource_not_found_path()
        ns, name = parts[3], parts[4]
        records = await self.archiver.records.find(ns, name)
        if q.get("uid"):
            records = [r for r in records if r.get("metadata", {}).get("uid") == q["uid"]]
        if not records:
            raise errors.StatusError(404, "NotFound", f'no history of job "{name}" in namespace "{ns}"')
        if len(parts) == 5:
            return _json({"items": records})
        if parts[5] != "log":
            raise errors.resource_not_found_path()
        return web.Response(body=await self.log_text(records[-1], q.get("index")), headers=TEXT_HEADERS)

    async def summaries(self, namespace: str | None, since: str | None) -> list[Obj]:
        records = await self.archiver.records.list(namespace)
        cutoff = None
        if since:
            try:
                cutoff = self.archiver.clock.now() - float(since)
            except ValueError:
                raise errors.bad_request(f'since: invalid value "{since}" (seconds)') from None
        out = [summary_json(r) for r in records]
        if cutoff is not None:
            out = [s for s in out if (parse_time(s["end"]) or 0) >= cutoff]
        return sorted(out, key=lambda s: s["end"] or "")

    async def log_text(self, record: Obj, index: str | None) -> bytes:
        md = record["job"]["metadata"]
        folder = self.archiver.job_dir(md.get("namespace") or "", md["name"], md["uid"])
        rows = record.get("pods") or []
        if index is not None:
            rows = [r for r in rows if str(r.get("index")) == index]
            if not rows:
                raise errors.bad_request(f"job {md['name']} has no archived pod with index {index}")
        several = len(rows) > 1

        def read() -> bytes:
            out = []
            for r in rows:
                if not r.get("log"):
                    continue
                path = folder / r["log"]
                if not path.is_file():
                    continue
                data = path.read_bytes()
                if several:
                    tag = f"[{r['index']}] " if r.get("index") is not None else f"[{r['name']}] "
                    data = b"".join(tag.encode() + line for line in data.splitlines(keepends=True))
                out.append(data)
            return b"".join(out)

        return await asyncio.to_thread(read)


def install(handler: ApiHandler, store: Store, data_dir: Path, pods_dir: Path | None, token: str | None, clock: Clock,
            *, retention: float, max_bytes: int) -> Archiver:
    """Mount the routes; the caller runs ``archiver.run()`` as a task."""
    history_dir = data_dir / "history"
    with contextlib.suppress(OSError):
        history_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(history_dir, 0o700)
    archiver = Archiver(store, history_dir, pods_dir, token, clock, retention=retention, max_bytes=max_bytes)
    handler.mount("jobplane", HistoryRoutes(archiver).serve)
    return archiver
