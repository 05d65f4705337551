"""``maestro mesh ...`` and ``maestro certs``: the production-shape mesh
(topology checks, Envoy configurations, development certificates)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from maestro.cli.certs import make_certs
from maestro.cli.envoy_config import LocalPlan, write_k8s, write_local
from maestro.cli.topology import Topology, check, load_topology

app = typer.Typer(
    help="The production-shape mesh: topology checks and Envoy configurations.",
    no_args_is_help=True,
)

TopologyOption = Annotated[
    Path | None,
    typer.Option(
        "--topology", help="Topology file (default: deploy/mesh/topology.yaml, found upwards)."
    ),
]


class Shape(StrEnum):
    local = "local"
    k8s = "k8s"


def _checked(path: Path | None) -> Topology:
    topology = load_topology(path)
    problems = check(topology)
    if problems:
        console = Console(stderr=True)
        console.print("[red]the topology disagrees with the code:[/red]")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(1)
    return topology


@app.command("check")
def check_command(topology: TopologyOption = None) -> None:
    """Verify the topology against the protos (idempotent RPCs), the services'
    default ports and the peers they are wired to. Exit code 1 on disagreement."""
    checked = _checked(topology)
    Console().print(
        f"topology OK: {len(checked.services)} services, "
        f"{sum(len(s.rpcs) for s in checked.services.values())} gRPC services"
    )


@app.command("envoy-config")
def envoy_config(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")],
    shape: Annotated[
        Shape,
        typer.Option(
            help="k8s: one sidecar per service (<out>/<service>.yaml); "
            "local: one Envoy for `maestro up --envoy` (<out>/envoy.yaml)."
        ),
    ] = Shape.local,
    certs_dir: Annotated[
        Path,
        typer.Option("--certs-dir", help="local shape: where `maestro certs` wrote the certs."),
    ] = Path(".maestro/certs"),
    topology: TopologyOption = None,
) -> None:
    """Generate Envoy configuration from the topology (checked first)."""
    checked = _checked(topology)
    if shape is Shape.k8s:
        paths = write_k8s(checked, out)
    else:
        paths = [write_local(checked, LocalPlan.from_topology(checked), certs_dir, out)]
    for path in paths:
        typer.echo(str(path))


def certs(
    out: Annotated[Path, typer.Option("--out", help="Directory for the CA and certificates.")],
    days: Annotated[int, typer.Option(help="Validity of new certificates, in days.")] = 365,
    force: Annotated[
        bool, typer.Option("--force", help="Reissue certificates that already exist.")
    ] = False,
    topology: TopologyOption = None,
) -> None:
    """Make a development CA and a certificate per service and client of the
    topology (SAN <name>.maestro.local, URI spiffe://maestro.local/<name>).

    Layout: OUT/ca.crt, OUT/ca.key, OUT/<name>/{tls.crt,tls.key,ca.crt}. An
    existing CA is reused, so running it again only fills in what is missing.
    """
    loaded = load_topology(topology)
    files = make_certs(
        out, loaded.identities(), namespace=loaded.k8s.namespace, days=days, overwrite=force
    )
    for name, identity in files.items():
        typer.echo(f"{name}: {identity.cert}")
