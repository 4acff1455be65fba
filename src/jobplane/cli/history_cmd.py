"""``jobplane history``: finished Jobs, kept after their pods and the Jobs themselves are
gone, listed as Slurm's ``sacct`` lists jobs; and ``jobplane logs --archived``'s reader."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from jobplane.cli import tabwriter
from jobplane.cli.common import CliError, Conn, connection_options, parse_duration, run
from jobplane.cli.run_view import duration
from jobplane.client.http import HttpClient

Obj = dict[str, Any]
HISTORY_PATH = "/jobplane/v1/history"


def parse_age(text: str) -> float:
    """A duration with days allowed: ``1d``, ``12h``, ``30m``, ``1d12h``."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)d(.*)", text.strip())
    if m:
        return float(m.group(1)) * 86400 + (parse_duration(m.group(2)) if m.group(2) else 0.0)
    return parse_duration(text)


def _time(text: str | None) -> str:
    return text.replace("T", " ").rstrip("Z") if text else "-"


def rows(items: list[Obj], all_namespaces: bool) -> list[list[str]]:
    head = ["NAME", "STATE", "REASON", "COMPLETIONS", "SUCCEEDED", "FAILED", "PODS", "START", "END",
            "ELAPSED", "EXITCODE"]
    out = [(["NAMESPACE"] if all_namespaces else []) + head]
    for s in items:
        completions = "-" if s.get("completions") is None else str(s["completions"])
        code = "-" if s.get("exitCode") is None else str(s["exitCode"])
        out.append(([s["namespace"]] if all_namespaces else []) + [
            s["name"], s["outcome"], s.get("reason") or "-", completions, str(s["succeeded"]), str(s["failed"]),
            str(s["pods"]), _time(s.get("start")), _time(s.get("end")), duration(s.get("elapsedSeconds")), code])
    return out


@click.command("history")
@click.option("-A", "--all-namespaces", is_flag=True, help="Jobs of every namespace.")
@click.option("--since", default=None, help="Only Jobs that ended within this long (1d, 12h, 30m).")
@connection_options
def history_cmd(all_namespaces: bool, since: str | None, conn: Conn) -> None:
    """List finished Jobs, including those already deleted (like sacct)."""
    try:
        since_seconds = parse_age(since) if since else None
    except CliError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None

    async def main() -> int:
        client = conn.client()
        try:
            params = {} if all_namespaces else {"namespace": conn.ns(client)}
            if since_seconds is not None:
                params["since"] = str(since_seconds)
            items = (await client.request("GET", HISTORY_PATH, params=params)).json()["items"]
        finally:
            await client.close()
        if not items:
            where = "any namespace" if all_namespaces else f"{params['namespace']} namespace"
            click.echo(f"No finished jobs found in {where}.", err=True)
            return 0
        text = "".join("\t".join(r) + "\n" for r in rows(items, all_namespaces))
        click.echo(tabwriter.tabify(text, padding=3), nl=False)
        return 0

    run(main)


async def print_archived(client: HttpClient, target: str, ns: str, index: int | None) -> None:
    """``jobplane logs --archived job/NAME [--index I]``: the newest record's logs."""
    kind, slash, name = target.partition("/")
    if not slash or kind not in ("job", "jobs", "job.batch", "jobs.batch"):
        raise CliError("--archived takes job/NAME")
    params = {"index": str(index)} if index is not None else {}
    resp = await client.request("GET", f"{HISTORY_PATH}/{ns}/{name}/log", params=params, accept="text/plain")
    sys.stdout.buffer.write(resp.body)
    sys.stdout.buffer.flush()
