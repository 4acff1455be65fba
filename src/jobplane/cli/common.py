"""What every kubectl-style verb shares: connection options, the client, resolving
kind names, argument forms (``TYPE NAME...``, ``TYPE/NAME``, ``a,b``) and kubectl's
one-line error messages with exit code 1."""

from __future__ import annotations

import asyncio
import functools
import re
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import click

from jobplane.api import registry
from jobplane.api.errors import StatusError
from jobplane.api.registry import ResourceInfo
from jobplane.client.base import Client
from jobplane.client.http import HttpClient

Obj = dict[str, Any]


class CliError(Exception):
    """A message printed as ``error: <message>`` (exit 1)."""


@dataclass
class Conn:
    kubeconfig: str | None
    context: str | None
    namespace: str | None

    def client(self) -> HttpClient:

        try:
            return HttpClient.from_kubeconfig(self.kubeconfig, self.context, user_agent="jobplane-cli",
                                              on_warning=lambda w: click.echo(f"Warning: {w}", err=True))
        except FileNotFoundError as exc:
            raise CliError(f"stat {exc.filename}: no such file or directory") from exc
        except (KeyError, ValueError) as exc:
            raise CliError(str(exc)) from exc

    def ns(self, client: Client) -> str:
        return self.namespace or getattr(client, "namespace", None) or "default"


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--kubeconfig, --context, -n/--namespace, folded into a ``conn`` argument."""

    @click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                  help="Path to the kubeconfig file (default $KUBECONFIG, then ~/.kube/config).")
    @click.option("--context", "context_name", default=None, help="The kubeconfig context to use.")
    @click.option("-n", "--namespace", default=None, help="The namespace scope for this request.")
    @functools.wraps(func)
    def wrapper(*args: Any, kubeconfig: str | None, context_name: str | None, namespace: str | None,
                **kwargs: Any) -> Any:
        if kubeconfig and ":" in kubeconfig:
            kubeconfig = kubeconfig.split(":", 1)[0]
        return func(*args, conn=Conn(kubeconfig, context_name, namespace), **kwargs)

    return wrapper


def error_text(exc: BaseException) -> str:
    """kubectl's ``StandardErrorMessage`` for an exception."""
    if isinstance(exc, StatusError):
        details = exc.details or {}
        if exc.code == 422 and exc.reason == "Invalid" and (details.get("kind") or details.get("name")):
            head = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
            causes = details.get("causes") or []
            if not causes:
                return head
            errs = [f"{c.get('field')}: {c.get('message')}" if c.get("field") else c.get("message", "")
                    for c in causes]
            if len(errs) == 1:
                return f"{head}: {errs[0]}"
            return f"{head}: \n" + "".join(f"* {e}\n" for e in errs).rstrip("\n")
        if exc.reason:
            return f"Error from server ({exc.reason}): {exc.message}"
        return f"Error from server: {exc.message}"
    if isinstance(exc, CliError):
        return f"error: {exc}"
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectorError):
            host = f"{exc.host}:{exc.port}"
            return f"The connection to the server {host} was refused - did you specify the right host or port?"
        if isinstance(exc, aiohttp.ClientError):
            return f"error: {exc}"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "error: timed out waiting for the server"
    return f"error: {exc}"


def run(coro_fn: Callable[[], Coroutine[Any, Any, int | None]]) -> None:
    """Run one verb; any error prints one line to stderr and exits 1."""
    try:
        code = asyncio.run(coro_fn())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - every error ends as one line
        click.echo(error_text(exc), err=True)
        sys.exit(1)
    if code:
        sys.exit(code)


def resolve(name: str) -> ResourceInfo:
    try:
        return registry.resolve(name)
    except KeyError:
        raise CliError(f'the server doesn\'t have a resource type "{name}"') from None


def expand_types(text: str) -> list[ResourceInfo]:
    """``jobs,pods`` / ``all`` -> kinds, in order, without duplicates."""
    out: list[ResourceInfo] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        infos = [r for r in registry.RESOURCES if "all" in r.categories and not r.read_only] \
            if part == "all" else [resolve(part)]
        for info in infos:
            if info not in out:
                out.append(info)
    return out


def parse_targets(args: tuple[str, ...] | list[str]) -> tuple[list[tuple[ResourceInfo, list[str]]], bool]:
    """kubectl's resource arguments -> [(kind, names)], and whether several types were asked for.

    ``TYPE[,TYPE2] [NAME...]`` or ``TYPE/NAME [TYPE/NAME...]`` (the forms cannot mix)."""
    if not args:
        raise CliError("you must specify the type of resource to get. Use \"jobplane api-resources\" for a "
                       "complete list of supported resources.")
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError("there is no need to specify a resource type as a separate argument when passing "
                           "arguments in resource/name form (e.g. 'jobplane get resource/<resource_name>' "
                           "instead of 'jobplane get resource resource/<resource_name>'")
        grouped: dict[ResourceInfo, list[str]] = {}
        for a in args:
            kind, _, name = a.partition("/")
            if not name:
                raise CliError("arguments in resource/name form must have a single resource and name")
            grouped.setdefault(resolve(kind), []).append(name)
        return list(grouped.items()), len(grouped) > 1
    infos = expand_types(args[0])
    names = list(args[1:])
    if names and len(infos) > 1:
        raise CliError("arguments in resource/name form must have a single resource and name")
    multi = len(infos) > 1 or "all" in args[0].split(",")
    return [(info, names) for info in infos], multi


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


async def target_names(client: Client, info: ResourceInfo, ns: str | None, names: list[str],
                       selector: str | None, all_: bool) -> list[str]:
    """The names given on the command line or, without any, those ``-l``/``--all`` select
    (kubectl's resource builder); an error when neither names nor a selection was given."""
    if names:
        return names
    if not (selector or all_):
        raise CliError("resource(s) were provided, but no name was specified")
    data = await client.list(info.group_resource, ns, label_selector=selector)
    return [i["metadata"]["name"] for i in data.get("items") or ()]


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (``30s``, ``1m30s``, ``2h``); a bare number means seconds."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise CliError(f'time: invalid duration "{text}"')
    return total


def positive_duration(text: str, option: str) -> float:
    """A positive Go duration given to a click option; a bad one is that option's usage error."""
    try:
        seconds = parse_duration(text)
    except CliError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if seconds <= 0:
        raise click.BadParameter("must be positive", param_hint=option)
    return seconds


def fill_type(info: ResourceInfo, obj: Obj) -> Obj:
    """Items of a list come without kind/apiVersion; kubectl prints them with."""
    if "kind" not in obj or "apiVersion" not in obj:
        obj = {"apiVersion": info.api_version, "kind": info.kind, **obj}
    return obj
