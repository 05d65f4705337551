"""The ``maestro`` command (typer)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from maestro.cli import devtoken_cli, executions_cli, mesh_cli, verify_cli, workflows
from maestro.cli.mesh import SERVICES, grpc_address, load_settings
from maestro.cli.up import EnvoyOptions, run_up, service_status, status_table
from maestro.runtime.server import serve_until_signal
from maestro.runtime.settings import ALL_SERVICES, GRPC_SERVICES

app = typer.Typer(
    name="maestro",
    help="Maestro: workflow and runbook orchestration control plane.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(workflows.app, name="workflows")
app.command("run")(executions_cli.run_workflow)
app.add_typer(executions_cli.executions_app, name="executions")
app.add_typer(executions_cli.human_tasks_app, name="human-tasks")
app.add_typer(mesh_cli.app, name="mesh")
app.command("certs")(mesh_cli.certs)
app.command("dev-token")(devtoken_cli.dev_token)
app.command("verify")(verify_cli.verify)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory for the services' embedded state (SQLite files)."),
]


@app.command()
def serve(
    services: Annotated[
        list[str],
        typer.Argument(help=f"Services to run in this process: {', '.join(ALL_SERVICES)}, or all."),
    ],
    data_dir: DataDir = None,
) -> None:
    """Run one or more services in this process until SIGTERM/Ctrl-C.

    Settings come from the environment (MAESTRO_<SERVICE>_PORT, ..._DATA_DIR, ...).
    """
    names = list(ALL_SERVICES) if services == ["all"] else services
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service(s): {', '.join(unknown)}")
    starters = []
    for name in names:
        settings = load_settings(name, data_dir)
        create = SERVICES[name].create_server()
        starters.append(lambda create=create, settings=settings: create(settings))
    first = load_settings(names[0], data_dir)
    asyncio.run(
        serve_until_signal(
            starters,
            service="+".join(names),
            log_level=first.log_level,
            log_format=first.log_format,
        )
    )


@app.command()
def up(
    *,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Directory for state and logs.")
    ] = Path(".maestro"),
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every service to be SERVING.")
    ] = 30.0,
    log_format: Annotated[str, typer.Option(help="Service log format: json or text.")] = "json",
    envoy: Annotated[
        bool,
        typer.Option(
            "--envoy",
            help="Run every call between services through Envoy with mTLS (certificates "
            "and config generated into the data dir from deploy/mesh/topology.yaml).",
        ),
    ] = False,
    envoy_free_ports: Annotated[
        bool,
        typer.Option(
            "--envoy-free-ports",
            help="With --envoy: free ports for Envoy's listeners instead of the topology's.",
        ),
    ] = False,
    topology: mesh_cli.TopologyOption = None,
) -> None:
    """Start the whole mesh as separate processes on SQLite, and supervise it."""
    options = EnvoyOptions(topology, envoy_free_ports) if envoy else None
    raise typer.Exit(
        asyncio.run(
            run_up(data_dir, ready_timeout=ready_timeout, log_format=log_format, envoy=options)
        )
    )


@app.command()
def status(
    timeout: Annotated[float, typer.Option(help="Seconds per health probe.")] = 1.0,
) -> None:
    """Health of every service of a running mesh (gRPC health protocol).

    Exit code 0 when all are SERVING, 1 otherwise.
    """

    async def probe() -> list[tuple[str, str, str, str, str]]:
        settings = {name: load_settings(name) for name in ALL_SERVICES}
        addresses = {name: grpc_address(s) for name, s in settings.items()}
        results = await asyncio.gather(
            *(service_status(n, addresses[n], timeout) for n in ALL_SERVICES)
        )
        rows = []
        for name, health in zip(ALL_SERVICES, results, strict=True):
            s = settings[name]
            metrics_port = s.metrics_port if name in GRPC_SERVICES else s.port
            metrics = f"http://{s.host}:{metrics_port}/metrics" if metrics_port else "-"
            rows.append((name, "-", addresses[name], metrics, health))
        return rows

    rows = asyncio.run(probe())
    Console().print(status_table(rows, "maestro status"))
    raise typer.Exit(0 if all(r[4] == "SERVING" for r in rows) else 1)


if __name__ == "__main__":
    app()
