"""Stage tracing for a jobplane server, loaded by Python itself (``site``) in every process
whose ``PYTHONPATH`` starts with this directory; it does nothing unless ``JP_TRACE`` is set.

    PYTHONPATH=bench/tracehooks JP_TRACE=/tmp/t.json [JP_TRACE_KEYS=1] [JP_TRACE_AGENT=1] \
        .venv/bin/python bench/bench_api.py ...      # or any script that starts a server

Each process writes ``$JP_TRACE.<pid>`` at exit (JSON): ``gc`` (start, CPU seconds, generation,
collected) for collections over 2 ms CPU and every full one; ``commit`` (start, seconds, changes)
per SQLite transaction (on its thread); ``batch`` per writer batch (start, seconds, ops, still
pending); ``lag`` (when, seconds) whenever a 2 ms sleep on the event loop overran by 5 ms;
``create`` per ``ApiService.create``; with ``JP_TRACE_KEYS`` every committed write (wall times,
op, key, pod phase); with ``JP_TRACE_AGENT`` the agent's and scheduler's stage calls (name,
pod, wall start, wall end). Used for bench/RESULTS.md §11; diagnostic only, patches by name.
"""

import os

if os.environ.get("JP_TRACE"):
    import atexit
    import gc
    import json
    import signal
    import time

    OUT = os.environ["JP_TRACE"] + f".{os.getpid()}"
    rec = {"gc": [], "commit": [], "batch": [], "lag": [], "create": []}
    _gc_t = {}

    def _gccb(phase, info):
        if phase == "start":
            _gc_t["t"] = time.perf_counter()
            _gc_t["c"] = time.thread_time()
        else:
            t0 = _gc_t.get("t")
            if t0 is not None:
                d = time.thread_time() - _gc_t["c"]
                if d > 0.002 or info["generation"] == 2:
                    rec["gc"].append((t0, d, info["generation"], info["collected"], 0))

    gc.callbacks.append(_gccb)

    def dump():
        with open(OUT, "w") as f:
            json.dump(rec, f)

    atexit.register(dump)

    import builtins

    _orig_import = builtins.__import__
    patched = set()

    def _patch():
        import sys

        m = sys.modules.get("jobplane.storage.sqlite")
        if m and hasattr(m, "SqliteStore") and "sqlite" not in patched:
            patched.add("sqlite")
            S = m.SqliteStore
            oc = S._commit

            def _commit(self, changes):
                t0 = time.perf_counter()
                try:
                    return oc(self, changes)
                finally:
                    rec["commit"].append((t0, time.perf_counter() - t0, len(changes)))

            S._commit = _commit
            ocb = S._commit_batch

            async def _commit_batch(self, ops):
                t0 = time.perf_counter()
                tw = time.time()
                r = await ocb(self, ops)
                if os.environ.get("JP_TRACE_KEYS"):
                    rec.setdefault("writes", []).append(
                        (
                            tw,
                            time.time(),
                            [
                                (
                                    o.op,
                                    o.key,
                                    (o.obj or {}).get("status", {}).get("phase")
                                    if o.key.startswith("pods/")
                                    else None,
                                )
                                for o in ops
                            ],
                        )
                    )
                rec["batch"].append((t0, time.perf_counter() - t0, len(ops), len(self._pending)))
                return r

            S._commit_batch = _commit_batch
        s = sys.modules.get("jobplane.apiserver.service")
        if s and hasattr(s, "ApiService") and "svc" not in patched:
            patched.add("svc")
            A = s.ApiService
            oc2 = A.create

            async def create(self, info, namespace, body, **kw):
                t0 = time.perf_counter()
                try:
                    return await oc2(self, info, namespace, body, **kw)
                finally:
                    rec["create"].append((t0, time.perf_counter() - t0))

            A.create = create
            import asyncio

            oce = A.ensure_default_namespaces

            async def edn(self):
                async def lagmon():
                    while True:
                        t = time.perf_counter()
                        await asyncio.sleep(0.002)
                        late = time.perf_counter() - t - 0.002
                        if late > 0.005:
                            rec["lag"].append((t, late))

                asyncio.get_running_loop().create_task(lagmon())
                return await oce(self)

            A.ensure_default_namespaces = edn

    def imp(name, *a, **k):
        r = _orig_import(name, *a, **k)
        if len(patched) < 2 and name.startswith("jobplane"):
            _patch()
        return r

    builtins.__import__ = imp

    def _term(*a):
        dump()
        os._exit(0)

    signal.signal(signal.SIGTERM, _term)

if os.environ.get("JP_TRACE_AGENT"):
    import functools as _f3
    import inspect as _i3
    import sys as _s3
    import time as _t3

    _b3 = __import__("builtins")
    _p3 = _b3.__import__
    _targets = {
        "jobplane.agent.worker": (
            "PodWorker",
            [
                "run",
                "_select_runtime",
                "_prepare_pod",
                "_setup_pod",
                "_write_projections",
                "_token",
                "_await_config",
                "_start_container",
                "report",
                "_patch_status",
                "_record_exit",
                "_save_state",
                "_process_spec",
                "_event",
            ],
        ),
        "jobplane.agent.agent": ("Agent", ["sync", "_start_worker"]),
        "jobplane.agent.runtime": ("HostProcessRuntime", ["start", "prepare"]),
        "jobplane.controllers.scheduler": ("Scheduler", None),
    }
    _done3 = set()

    def _who(self, args):
        n = getattr(self, "name", None)
        if isinstance(n, str):
            return n
        for a in args:
            if isinstance(a, dict):
                md = a.get("metadata") or {}
                if md.get("name"):
                    return md["name"]
            if isinstance(a, str) and "lat-" in a:
                return a
            n = getattr(a, "name", None) or getattr(a, "pod_name", None)
            if isinstance(n, str):
                return n
        return ""

    def _wrap(cls, meth):
        f = cls.__dict__.get(meth)
        if f is None:
            return
        key = f"{cls.__name__}.{meth}"
        if _i3.iscoroutinefunction(f):

            @_f3.wraps(f)
            async def w(self, *a, **k):
                t = _t3.time()
                try:
                    return await f(self, *a, **k)
                finally:
                    rec.setdefault("calls", []).append((key, _who(self, a), t, _t3.time()))
        else:

            @_f3.wraps(f)
            def w(self, *a, **k):
                t = _t3.time()
                try:
                    return f(self, *a, **k)
                finally:
                    rec.setdefault("calls", []).append((key, _who(self, a), t, _t3.time()))

        setattr(cls, meth, w)

    def _imp3(name, *a, **k):
        r = _p3(name, *a, **k)
        for mod, (cn, meths) in _targets.items():
            if mod in _done3:
                continue
            m = _s3.modules.get(mod)
            if m is not None and hasattr(m, cn):
                _done3.add(mod)
                cls = getattr(m, cn)
                if meths is None:
                    meths = [n for n, v in vars(cls).items() if callable(v) and not n.startswith("__")]
                for me in meths:
                    _wrap(cls, me)
        return r

    _b3.__import__ = _imp3
