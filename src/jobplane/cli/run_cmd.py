"""``jobplane run``: submit a Job and follow it to the end, as ``srun`` does for Slurm.

A live progress display on a terminal (one line per change otherwise), the pods' logs
prefixed by index or pod, and an exit status that says how the Job ended: 0 Complete,
1 Failed, 2 usage or API error, 130 interrupted. What to show is decided in ``run_view``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

import click

from jobplane.api.errors import StatusError
from jobplane.cli import manifests, run_view
from jobplane.cli.common import CliError, Conn, connection_options, error_text
from jobplane.cli.logs_cmd import pick_container
from jobplane.client.base import Client
from jobplane.client.http import HttpClient

Obj = dict[str, Any]

USAGE_OR_API_ERROR = 2
INTERRUPTED = 130
FAILED_LOG_LINES = 10  # last lines shown per failed pod when the Job fails
FAILED_PODS_SHOWN = 5
LOG_DRAIN_SECONDS = 3.0  # how long trailing log output may take once the Job finished


class PlainOutput:
    """Not a terminal: a line per change of the counts, log lines as they come."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last: tuple[tuple[int, int, int], str | None] | None = None

    def __enter__(self) -> PlainOutput:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, snap: run_view.Snapshot, elapsed: float, force: bool = False) -> None:
        state = (snap.counts, snap.outcome)
        if state != self.last:
            self.last = state
            click.echo(run_view.status_line(self.name, snap, elapsed))

    def tick(self, snap: run_view.Snapshot, elapsed: float) -> None:
        return None

    def log(self, prefix: str, line: str) -> None:
        click.echo(f"{prefix} {line}")

    def note(self, text: str) -> None:
        click.echo(text)


class LiveOutput:
    """A terminal: rich's progress bar kept at the bottom, log lines scrolling above it."""

    def __init__(self, name: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.name = name
        self.console = Console(highlight=False)
        self.progress = Progress(
            TextColumn("[bold]job/{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed[/] [cyan]{task.fields[active]} active[/]"),
            TimeElapsedColumn(), TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"),
            console=self.console, refresh_per_second=8, transient=False)
        self.task = self.progress.add_task(name, total=None, failed=0, active=0, rate="", eta="")

    def __enter__(self) -> LiveOutput:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, snap: run_view.Snapshot, elapsed: float, force: bool = False) -> None:
        r = run_view.rate(snap, elapsed)
        left = run_view.eta(snap, elapsed) if snap.outcome is None else None
        self.progress.update(self.task, total=snap.completions, completed=snap.succeeded, failed=snap.failed,
                             active=snap.active, rate=f"{r:.2f}/s" if r > 0 else "",
                             eta=f"ETA {run_view.duration(left)}" if left is not None else "")

    def tick(self, snap: run_view.Snapshot, elapsed: float) -> None:
        self.update(snap, elapsed)

    def log(self, prefix: str, line: str) -> None:
        from rich.text import Text

        self.progress.console.print(Text(f"{prefix} ", style="dim") + Text(line))

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False)


class Follower:
    """Watches one Job and its pods until the Job finishes; streams logs as asked."""

    def __init__(self, client: HttpClient, ns: str, job: Obj, out: PlainOutput | LiveOutput, logs: str) -> None:
        self.client = client
        self.ns = ns
        self.name = job["metadata"]["name"]
        self.uid = job["metadata"]["uid"]
        self.job = job
        self.out = out
        self.logs = logs
        self.started = time.monotonic()
        self.pods: dict[str, Obj] = {}
        self.streams: dict[str, asyncio.Task] = {}
        self.shown_failed: set[str] = set()
        self.done = asyncio.Event()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def snap(self) -> run_view.Snapshot:
        return run_view.snapshot(self.job)

    async def run(self) -> run_view.Snapshot:
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._watch_job()),
                                          asyncio.create_task(self._watch_pods()), asyncio.create_task(self._tick())]
        try:
            self.out.update(self.snap(), self.elapsed(), force=True)
            waiter = asyncio.create_task(self.done.wait())
            tasks.append(waiter)
            await asyncio.wait([waiter, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if not self.done.is_set():
                tasks[0].result()  # the job watch failed: raise its error
                raise CliError(f"lost the watch on job/{self.name}")
            for t in tasks[1:]:
                t.cancel()
            await self._catch_up_pods()
            await self._drain_logs()
            return self.snap()
        finally:
            for t in (*tasks, *self.streams.values()):
                t.cancel()
            await asyncio.gather(*tasks, *self.streams.values(), return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.out.tick(self.snap(), self.elapsed())

    async def _watch_job(self) -> None:
        rv = self.job["metadata"].get("resourceVersion")
        while not self.done.is_set():
            async for etype, obj in self.client.watch("jobs", self.ns, resource_version=rv,
                                                      field_selector=f"metadata.name={self.name}",
                                                      timeout_seconds=300):
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if etype == "DELETED" or obj.get("metadata", {}).get("uid") != self.uid:
                    raise CliError(f"job/{self.name} was deleted")
                if etype in ("ADDED", "MODIFIED"):
                    self.job = obj
                    snap = self.snap()
                    self.out.update(snap, self.elapsed())
                    if snap.outcome is not None:
                        self.done.set()
                        return

    async def _watch_pods(self) -> None:
        selector = f"batch.kubernetes.io/controller-uid={self.uid}"
        rv: str | None = None
        while True:
            async for etype, pod in self.client.watch("pods", self.ns, label_selector=selector,
                                                      resource_version=rv, timeout_seconds=300):
                rv = pod.get("metadata", {}).get("resourceVersion", rv)
                if etype in ("ADDED", "MODIFIED"):
                    self._pod_changed(pod)

    def _pod_changed(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        self.pods[uid] = pod
        if self.logs == "all" and uid not in self.streams and run_view.pod_started(pod):
            self.streams[uid] = asyncio.create_task(self._stream(pod, follow=True))
        elif self.logs == "failed" and run_view.pod_failed(pod) and uid not in self.streams:
            self.shown_failed.add(uid)
            self.streams[uid] = asyncio.create_task(self._stream(pod, follow=False))

    async def _stream(self, pod: Obj, *, follow: bool, tail: int | None = None) -> None:
        prefix = run_view.log_prefix(pod)
        container, _ = pick_container(pod, None)
        pending = b""
        try:
            async for chunk in self.client.read_log(pod["metadata"]["name"], self.ns, container=container,
                                                    follow=follow, tail_lines=tail):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.out.log(prefix, line.decode(errors="replace"))
        except StatusError:
            return  # the pod went away (or never started): nothing to show
        if pending:
            self.out.log(prefix, pending.decode(errors="replace"))

    async def _catch_up_pods(self) -> None:
        """Pods the watch had not shown yet when the Job finished (a fast Job can finish
        first): list them once, so their logs and failures are not missed."""
        with contextlib.suppress(StatusError):
            listed = await self.client.list("pods", self.ns,
                                            label_selector=f"batch.kubernetes.io/controller-uid={self.uid}")
            for pod in listed.get("items") or ():
                self._pod_changed(pod)

    async def _drain_logs(self) -> None:
        pending = [t for t in self.streams.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=LOG_DRAIN_SECONDS)

    async def failed_logs(self) -> None:
        """The last lines of each failed pod (not already shown whole)."""
        failed = [p for uid, p in self.pods.items() if run_view.pod_failed(p) and uid not in self.shown_failed]
        for pod in failed[:FAILED_PODS_SHOWN]:
            self.out.note(f"--- last {FAILED_LOG_LINES} lines of {run_view.log_prefix(pod)} "
                          f"(pod {pod['metadata']['name']}) ---")
            await self._stream(pod, follow=False, tail=FAILED_LOG_LINES)
        if len(failed) > FAILED_PODS_SHOWN:
            self.out.note(f"... and {len(failed) - FAILED_PODS_SHOWN} more failed pods "
                          f"(jobplane logs job/{self.name})")


def build_job(args: tuple[str, ...], filename: str | None, image: str | None, completions: int | None,
              parallelism: int | None, indexed: bool, backoff_limit: int | None, env: tuple[str, ...]) -> Obj:
    """The Job to submit, from ``-f`` or from the flags; usage errors as click's."""
    if filename:
        if args or image:
            raise click.UsageError("-f takes no NAME, --image or command")
        try:
            docs = manifests.load([filename])
        except manifests.ManifestError as exc:
            raise click.UsageError(str(exc)) from exc
        jobs = [d for _, d in docs if d.get("kind") == "Job"]
        if len(docs) != 1 or len(jobs) != 1:
            raise click.UsageError(f"{filename} must hold exactly one Job")
        job = jobs[0]
        spec = job.setdefault("spec", {})
        for key, value in (("completions", completions), ("parallelism", parallelism),
                           ("backoffLimit", backoff_limit)):
            if value is not None:
                spec[key] = value
        return job
    if not args:
        raise click.UsageError("NAME is required (or -f FILE)")
    if not image:
        raise click.UsageError("--image is required")
    try:
        env_vars = run_view.parse_env(env)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    return run_view.job_from_flags(args[0], image, list(args[1:]), completions=completions,
                                   parallelism=parallelism, indexed=indexed, backoff_limit=backoff_limit,
                                   env=env_vars)


async def _delete(client: Client, name: str, ns: str) -> None:
    with contextlib.suppress(StatusError):
        await client.delete("jobs", name, ns, propagation_policy="Background")
    click.echo(f'job.batch "{name}" deleted')


async def _run(conn: Conn, body: Obj, logs: str, rm: bool, detach: bool) -> int:
    client = conn.client()
    try:
        ns = conn.ns(client)
        job = await client.create("jobs", body, body.get("metadata", {}).get("namespace") or ns)
        ns = job["metadata"].get("namespace") or ns
        name = job["metadata"]["name"]
        if detach:
            click.echo(f"job.batch/{name} created")
            return 0
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        out = LiveOutput(name) if sys.stdout.isatty() else PlainOutput(name)
        follower = Follower(client, ns, job, out, logs)
        with out:
            following = asyncio.create_task(follower.run())
            stop = asyncio.create_task(interrupted.wait())
            await asyncio.wait([following, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
                snap = None
            else:
                snap = following.result()
            if snap is not None:
                out.update(snap, follower.elapsed(), force=True)
        loop.remove_signal_handler(signal.SIGINT)
        if snap is None:
            click.echo(f"\ninterrupted; job/{name} is still running")
            if rm or (sys.stdin.isatty() and click.confirm(f"Delete job/{name}?", default=False)):
                await _delete(client, name, ns)
            else:
                click.echo(f"follow it with: jobplane logs -f job/{name}; delete it with: "
                           f"jobplane delete job {name}")
            return INTERRUPTED
        code = 0
        if snap.outcome == "Failed":
            code = 1
            click.echo(f"job/{name} failed: {snap.reason}: {snap.message}")
            await follower.failed_logs()
        if rm:
            await _delete(client, name, ns)
        return code
    finally:
        await client.close()


@click.command("run")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", default=None, help="Submit the Job in this manifest (one Job).")
@click.option("--image", default=None, help="The container image (host processes ignore it).")
@click.option("--completions", type=click.IntRange(min=0), default=None, help="Pods that must succeed.")
@click.option("--parallelism", type=click.IntRange(min=0), default=None, help="Pods run at once.")
@click.option("--indexed", is_flag=True, help="completionMode: Indexed (JOB_COMPLETION_INDEX in each pod).")
@click.option("--backoff-limit", type=click.IntRange(min=0), default=None, help="Failed pods tolerated.")
@click.option("--env", multiple=True, help="KEY=VALUE for the container (repeatable).")
@click.option("--logs", type=click.Choice(["all", "failed", "none"]), default="all",
              help="Stream every pod's log, only failed pods' logs, or none.")
@click.option("--no-logs", is_flag=True, help="Same as --logs=none.")
@click.option("--rm", is_flag=True, help="Delete the Job when it ends (or on Ctrl-C).")
@click.option("-d", "--detach", is_flag=True, help="Submit the Job and return at once.")
@connection_options
def run_cmd(args: tuple[str, ...], filename: str | None, image: str | None, completions: int | None,
            parallelism: int | None, indexed: bool, backoff_limit: int | None, env: tuple[str, ...], logs: str,
            no_logs: bool, rm: bool, detach: bool, conn: Conn) -> None:
    """Run a Job and follow it: jobplane run NAME --image IMG [flags] -- CMD [ARGS...]
    or jobplane run -f job.yaml. Exit status: 0 Complete, 1 Failed, 2 usage or API error."""
    body = build_job(args, filename, image, completions, parallelism, indexed, backoff_limit, env)
    try:
        code = asyncio.run(_run(conn, body, "none" if no_logs else logs, rm, detach))
    except Exception as exc:  # noqa: BLE001 - API and connection errors: one line, exit 2
        click.echo(error_text(exc), err=True)
        sys.exit(USAGE_OR_API_ERROR)
    sys.exit(code)
