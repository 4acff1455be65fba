"""The web dashboard at ``/ui/``: static assets shipped in the package, one-time login
links, and the aggregations a browser should not compute (a 10,000-pod Job's timeline,
node allocation).

Everything live comes from the Kubernetes API itself (list + watch with the user's
bearer token), so the dashboard shows exactly what the API would let that user see.
The static files are public (they hold no data); ``/ui/api/*`` needs the same bearer
token as the API, checked by ``authenticated`` — the seam where an authorizer would
check, per request, that its user may read what the endpoint returns (``get jobs``,
``list pods`` in the namespace; ``list nodes`` for the nodes page).
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from jobplane.api import errors, jobhistory, registry
from jobplane.api.meta import rfc3339
from jobplane.api.pods import PENDING, RUNNING, phase
from jobplane.api.quantity import parse_quantity
from jobplane.clock import Clock

Obj = dict[str, Any]

LINK_TTL = 300.0  # seconds a one-time login link stays valid
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
ASSET_HEADERS = {"Cache-Control": "no-cache"}


def assets_dir() -> Path:
    return Path(str(resources.files("jobplane") / "ui"))


class LoginLinks:
    """One-time codes, each standing for the bearer token of whoever asked for it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._codes: dict[str, tuple[str, float]] = {}

    def issue(self, token: str) -> str:
        now = self.clock.now()
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
        code = secrets.token_urlsafe(24)
        self._codes[code] = (token, now + LINK_TTL)
        return code

    def redeem(self, code: str) -> str | None:
        token, expires = self._codes.pop(code, ("", 0.0))
        return token if token and expires > self.clock.now() else None


def timeline_row(pod: Obj) -> Obj:
    """One pod as the Job page draws it: the row a JobRecord keeps (so live and archived
    Jobs draw alike) plus its creation time."""
    row = jobhistory.pod_row(pod, None, 0)
    row["createdAt"] = (pod.get("metadata") or {}).get("creationTimestamp")
    del row["peakMemoryBytes"], row["cpuSeconds"], row["log"], row["logBytes"]
    return row


def timeline(job: Obj, rows: list[Obj]) -> Obj:
    """The Job page's data: the Job, its pods' rows in index/creation order, counts by phase."""
    rows.sort(key=lambda r: (r["index"] if r["index"] is not None else -1, r["createdAt"] or "", r["name"]))
    phases: dict[str, int] = {}
    for r in rows:
        phases[r["phase"] or PENDING] = phases.get(r["phase"] or PENDING, 0) + 1
    return {"job": job, "pods": rows, "phases": phases}


class RowCache:
    """Rows of the pods of the last few Jobs viewed, keyed by a digest of the pods' stored
    bytes, so reloading a 10,000-pod Job's page decodes only the pods that changed since. (Not
    the bytes themselves: the mirror keeps cold pods compressed, and their JSON, inflated for
    the read, would be held here.)"""

    def __init__(self, jobs: int = 8) -> None:
        self.jobs = jobs
        self._by_job: dict[str, dict[bytes, Obj]] = {}

    def rows(self, job_uid: str, items: Iterable[bytes]) -> list[Obj]:
        old = self._by_job.pop(job_uid, {})
        fresh: dict[bytes, Obj] = {}
        for data in items:
            digest = hashlib.blake2b(data, digest_size=16).digest()
            row = old.get(digest)
            if row is None:
                row = timeline_row(orjson.loads(data))
            fresh[digest] = row
        self._by_job[job_uid] = fresh
        while len(self._by_job) > self.jobs:
            self._by_job.pop(next(iter(self._by_job)))
        return [dict(r) for r in fresh.values()]


def _requests(pod: Obj) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in (pod.get("spec") or {}).get("containers") or ():
        for name, value in ((c.get("resources") or {}).get("requests") or {}).items():
            try:
                total[name] = total.get(name, 0.0) + float(parse_quantity(str(value)))
            except (ValueError, TypeError):
                continue
    return total


def node_summaries(nodes: list[Obj], pods: list[Obj]) -> list[Obj]:
    """Each node's capacity, allocatable, requests of its running pods and their count."""
    by_node: dict[str, list[Obj]] = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and phase(p) in (PENDING, RUNNING):
            by_node.setdefault(node, []).append(p)
    out = []
    for n in nodes:
        md, status = n.get("metadata") or {}, n.get("status") or {}
        running = by_node.get(md.get("name", ""), [])
        allocated: dict[str, float] = {}
        for p in running:
            for k, v in _requests(p).items():
                allocated[k] = allocated.get(k, 0.0) + v
        ready = next((c.get("status") for c in status.get("conditions") or () if c.get("type") == "Ready"), "Unknown")
        out.append({"name": md.get("name"), "ready": ready, "capacity": status.get("capacity") or {},
                    "allocatable": status.get("allocatable") or {}, "allocated": allocated,
                    "pods": len(running), "podNames": [f"{(p['metadata'].get('namespace'))}/{p['metadata']['name']}"
                                                      for p in running[:50]],
                    "unschedulable": bool((n.get("spec") or {}).get("unschedulable"))})
    return out


class Dashboard:
    def __init__(self, service: Any, clock: Clock, authenticated: Callable[[web.Request], bool],
                 bearer: Callable[[web.Request], str | None]) -> None:
        self.service = service
        self.links = LoginLinks(clock)
        self.authenticated = authenticated
        self.bearer = bearer
        self.root = assets_dir()
        self.row_cache = RowCache()
        # CronJob -> next run (epoch seconds); the server injects the controllers' schedule
        # arithmetic (a layer above this one).
        self.next_run: Callable[[Obj], float | None] = lambda cj: None

    async def serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/ui":
            raise web.HTTPFound("/ui/")
        if path.startswith("/ui/api/"):
            return await self._api(request, path[len("/ui/api/"):].split("/"))
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed", "the dashboard's files are read-only")
        return self._asset(path[len("/ui/"):] or "index.html")

    def _asset(self, rel: str) -> web.StreamResponse:
        root = self.root.resolve()
        target = (root / rel).resolve()
        if root not in target.parents or not target.is_file():
            target = root / "index.html"  # client-side routes
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            ctype = "text/javascript"
        return web.Response(body=target.read_bytes(), headers={**ASSET_HEADERS, "Content-Type": ctype})

    async def _api(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if parts == ["redeem"] and request.method == "POST":
            body = await request.json()
            token = self.links.redeem(str((body or {}).get("code") or ""))
            if token is None:
                raise errors.unauthorized()
            return _json({"token": token})
        if not self.authenticated(request):
            raise errors.unauthorized()
        if parts == ["links"] and request.method == "POST":
            return _json({"code": self.links.issue(self.bearer(request) or ""), "expiresInSeconds": LINK_TTL})
        if request.method != "GET":
            raise errors.StatusError(405, "MethodNotAllowed", "method not allowed")
        if len(parts) == 4 and parts[0] == "timeline":
            _, ns, kind, name = parts
            if kind != "jobs":
                raise errors.resource_not_found_path()
            job = await self.service.get(registry.JOBS, ns, name)
            uid = job["metadata"]["uid"]
            # The pods' stored bytes, found by the label index (the selector is one equality).
            listed = await self.service.store.list_bytes(registry.PODS.storage_key(ns, ""), None,
                                                         label_hint={CONTROLLER_UID: uid})
            data = timeline(job, self.row_cache.rows(uid, listed.items))
            data["podsResourceVersion"] = str(listed.revision)
            return _json(data)
        if len(parts) == 2 and parts[0] == "cronjobs":
            cronjobs = await self.service.list(registry.CRONJOBS, parts[1])
            runs = {}
            for cj in cronjobs["items"]:
                when = self.next_run(cj)
                if when is not None:
                    runs[cj["metadata"]["name"]] = rfc3339(when)
            return _json({"nextRuns": runs})
        if parts == ["nodes"]:
            nodes = await self.service.list(registry.NODES, None)
            pods = await self.service.list(registry.PODS, None)
            return _json({"items": node_summaries(nodes["items"], pods["items"])})
        raise errors.resource_not_found_path()


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), headers={"Content-Type": "application/json",
                                                         "Cache-Control": "no-store"})


def install(handler: Any, service: Any, clock: Clock) -> Dashboard:
    """Mount ``/ui/`` on the API handler (static files public, ``/ui/api/`` authenticated)."""

    def bearer(request: web.Request) -> str | None:
        value = request.headers.get("Authorization") or ""
        return value[len("Bearer "):] if value.startswith("Bearer ") else None

    dashboard = Dashboard(service, clock, handler.authenticated, bearer)
    handler.mount("ui", dashboard.serve, public=True)
    return dashboard
