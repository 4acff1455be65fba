"""``jobplane images``: the container images of this machine's engine (the image runtime,
``--runtime podman|docker``), for machines without registry access."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

ENGINE_CHOICE = click.Choice(["auto", "podman", "docker"])


def _engine(choice: str):  # -> EngineRuntime
    import tempfile

    from jobplane.agent.engine import ENGINES, EngineRuntime, probe
    from jobplane.clock import Clock

    reasons = []
    for engine in (ENGINES if choice == "auto" else (choice,)):
        version, why = probe(engine)
        if version is not None:
            return EngineRuntime(Clock(), engine, data_dir=Path(tempfile.mkdtemp(prefix="jobplane-images-")),
                                 version=version)
        reasons.append(why)
    click.echo(f"error: no container engine: {'; '.join(reasons)}", err=True)
    sys.exit(1)


@click.group("images")
def images() -> None:
    """Container images of this machine's engine (podman or docker)."""


@images.command("load")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--engine", type=ENGINE_CHOICE, default="auto", show_default=True,
              help="The engine to load into (auto: podman if it works, else docker).")
def load(archive: Path, engine: str) -> None:
    """Load an image archive (docker-archive or OCI layout tar, as ``docker save`` or
    ``podman save`` write it) so pods on this node can run it without a registry."""
    from jobplane.agent.engine import PullError

    rt = _engine(engine)
    try:
        out = asyncio.run(rt.load(archive.resolve()))
    except PullError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        import shutil

        shutil.rmtree(rt.data_dir, ignore_errors=True)
    click.echo(out)


@images.command("list")
@click.option("--engine", type=ENGINE_CHOICE, default="auto", show_default=True)
def list_images(engine: str) -> None:
    """The images on this machine, as the Node's ``status.images`` lists them."""
    import shutil

    rt = _engine(engine)
    try:
        found = asyncio.run(rt.list_images())
    finally:
        shutil.rmtree(rt.data_dir, ignore_errors=True)
    for image in found:
        names = [n for n in image["names"] if "@" not in n and not n.startswith("sha256:")] or image["names"][-1:]
        click.echo(f"{', '.join(names)}\t{image['sizeBytes']}")
