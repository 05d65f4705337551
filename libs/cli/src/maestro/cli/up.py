"""``maestro up``: the whole mesh as separate processes on the embedded default.

Starts every service as its own process (``python -m maestro.services.<svc>``),
waits until each gRPC service reports SERVING and the gateway answers HTTP, prints
a table, then supervises: Ctrl-C/SIGTERM stops all of them (SIGTERM, then SIGKILL
after a grace period), and a service that dies is reported and brings the mesh
down with a non-zero exit code. Children get PR_SET_PDEATHSIG, so even a killed
``maestro up`` leaves no orphans.

With ``--envoy`` the same services run behind one Envoy process generated from
deploy/mesh/topology.yaml (the local shape, docs/mesh.md): certificates are
made in ``<data-dir>/certs``, every peer address points at the caller's Envoy
outbound listener, and every call between services is mTLS through Envoy.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from maestro.cli.certs import make_certs
from maestro.cli.envoy import EnvoyProcess
from maestro.cli.envoy_config import LocalPlan, write_local
from maestro.cli.mesh import PEERS, SERVICES, child_environment, load_settings
from maestro.cli.topology import check, load_topology
from maestro.runtime.clients import probe_health
from maestro.runtime.periodic import woken
from maestro.runtime.settings import ALL_SERVICES, GRPC_SERVICES

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One service process."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    metrics: str
    log_path: Path
    status: str = "STARTING"


async def service_status(name: str, address: str, timeout: float = 1.0) -> str:
    """SERVING/NOT_SERVING/UNREACHABLE for a gRPC service; SERVING/UNREACHABLE
    for the gateway (its liveness endpoint)."""
    if name in GRPC_SERVICES:
        return await probe_health(address, timeout=timeout)
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"http://{address}/healthz")
        return "SERVING" if response.status_code == 200 else f"HTTP_{response.status_code}"
    except httpx.HTTPError:
        return "UNREACHABLE"


def status_table(rows: list[tuple[str, str, str, str, str]], title: str) -> Table:
    table = Table(title=title)
    for column in ("service", "pid", "address", "metrics", "health"):
        table.add_column(column)
    for service, pid, address, metrics, health in rows:
        style = "green" if health == "SERVING" else "red"
        table.add_row(service, pid, address, metrics, f"[{style}]{health}[/{style}]")
    return table


@dataclass(frozen=True)
class EnvoyOptions:
    """``maestro up --envoy``: which topology, and whether Envoy's listeners take
    the topology's fixed local ports or free ones."""

    topology: Path | None = None
    free_ports: bool = False


class Mesh:
    """The supervised set of service processes (and Envoy, with ``envoy``)."""

    def __init__(
        self,
        data_dir: Path,
        console: Console,
        *,
        log_format: str = "json",
        envoy: EnvoyOptions | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.console = console
        self.log_format = log_format
        self.envoy_options = envoy
        self.envoy: EnvoyProcess | None = None
        self.front_address = ""
        self.children: list[Child] = []

    def _start_envoy(self, logs: Path) -> dict[str, dict[str, str]]:
        """Certificates, the local Envoy configuration and the Envoy process;
        returns the peer-address environment that sends calls through it."""
        assert self.envoy_options is not None
        topology = load_topology(self.envoy_options.topology)
        problems = check(topology)
        if problems:
            raise RuntimeError("the topology disagrees with the code: " + "; ".join(problems))
        certs_dir = self.data_dir / "certs"
        make_certs(certs_dir, topology.identities())
        settings = {name: load_settings(name, self.data_dir) for name in ALL_SERVICES}
        app_ports = {name: settings[name].port for name in topology.grpc_services}
        # Ports the services bind after Envoy starts: no listener may take one.
        taken = [s.port for s in settings.values()] + [
            port for s in settings.values() if (port := getattr(s, "metrics_port", None))
        ]
        plan = (
            LocalPlan.free(topology, {n: [p] for n, p in app_ports.items()}, taken=taken)
            if self.envoy_options.free_ports
            else LocalPlan.from_topology(topology, app_ports)
        )
        config = write_local(topology, plan, certs_dir, self.data_dir / "envoy")
        log_path = logs / "envoy.log"
        self.envoy = EnvoyProcess(
            config, plan.admin, log=log_path, preexec_fn=_die_with_parent
        ).start()
        assert self.envoy.process is not None
        self.front_address = f"{plan.host}:{plan.front}"
        self.children.append(
            Child(
                name="envoy",
                process=self.envoy.process,
                address=self.front_address,
                metrics=f"{self.envoy.admin_url}/stats/prometheus",
                log_path=log_path,
            )
        )
        env: dict[str, dict[str, str]] = {}
        for name, peers in PEERS.items():
            outbound = f"{plan.host}:{plan.outbound[name]}"
            prefix = SERVICES[name].env_prefix()
            env[name] = {f"{prefix}{setting.upper()}": outbound for setting in peers}
        return env

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        env_by_service = child_environment(self.data_dir)
        if self.envoy_options is not None:
            for name, values in self._start_envoy(logs).items():
                env_by_service[name].update(values)
        for name in ALL_SERVICES:
            env = {**os.environ, **env_by_service[name]}
            env[f"{SERVICES[name].env_prefix()}LOG_FORMAT"] = self.log_format
            settings = load_settings(name, self.data_dir)
            log_path = logs / f"{name}.log"
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", SERVICES[name].module],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
                )
            metrics_port = getattr(settings, "metrics_port", None)
            self.children.append(
                Child(
                    name=name,
                    process=process,
                    address=f"{settings.host}:{settings.port}",
                    metrics=(
                        f"http://{settings.host}:{metrics_port}/metrics"
                        if name in GRPC_SERVICES and metrics_port
                        else f"http://{settings.host}:{settings.port}/metrics"
                    ),
                    log_path=log_path,
                )
            )

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    async def wait_ready(self, timeout: float) -> bool:
        """True once every service is SERVING; False on timeout or a death."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dead():
                return False
            statuses = await asyncio.gather(*(self._status(c) for c in self.children))
            for child, status in zip(self.children, statuses, strict=True):
                child.status = status
            if all(s == "SERVING" for s in statuses):
                return True
            await asyncio.sleep(0.2)
        return False

    async def _status(self, child: Child) -> str:
        if child.name == "envoy" and self.envoy is not None:
            ready = await asyncio.to_thread(self.envoy.ready)
            return "SERVING" if ready else "STARTING"
        return await service_status(child.name, child.address)

    def table(self, title: str) -> Table:
        rows = []
        for c in self.children:
            code = c.process.poll()
            health = c.status if code is None else f"EXITED({code})"
            rows.append((c.name, str(c.process.pid), c.address, c.metrics, health))
        return status_table(rows, title)

    def report_failures(self) -> None:
        for child in self.dead():
            self.console.print(
                f"[red]{child.name} exited with code {child.process.returncode}[/red]; "
                f"last log lines ({child.log_path}):"
            )
            lines = child.log_path.read_text(errors="replace").splitlines()[-15:]
            for line in lines:
                self.console.print(f"  {line}", markup=False, highlight=False)

    def stop(self, grace: float = 8.0) -> bool:
        """SIGTERM everyone (gateway first), SIGKILL what is left after
        ``grace``; True if every process exited by itself with code 0."""
        clean = True
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                code = child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
                self.console.print(f"[red]{child.name} did not stop in {grace:.0f}s; killed[/red]")
                clean = False
                continue
            if code not in (0, -signal.SIGTERM):
                clean = False
        return clean


async def run_up(
    data_dir: Path,
    *,
    ready_timeout: float,
    log_format: str,
    envoy: EnvoyOptions | None = None,
) -> int:
    """Starts the mesh and supervises it until a signal or a death; exit code."""
    console = Console()
    mesh = Mesh(data_dir, console, log_format=log_format, envoy=envoy)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        mesh.start()
    except (RuntimeError, OSError, ValueError) as exc:
        console.print(f"[red]cannot start the mesh: {exc}[/red]", highlight=False)
        mesh.stop()
        return 1
    exit_code = 0
    try:
        ready = await mesh.wait_ready(ready_timeout)
        console.print(mesh.table(f"maestro mesh ({mesh.data_dir})"))
        if not ready:
            console.print("[red]the mesh did not become ready[/red]")
            mesh.report_failures()
            return 1
        console.print("[green]all services SERVING[/green]; Ctrl-C stops them", highlight=False)
        if mesh.envoy is not None:
            console.print(
                f"Envoy: every call between services is mTLS; operators reach every service "
                f"at {mesh.front_address} (routed by gRPC service name, or "
                f"-authority <service>.maestro.local for health/reflection); admin "
                f"{mesh.envoy.admin_url}; config {mesh.envoy.config}",
                highlight=False,
            )
        while not stop.is_set():
            if mesh.dead():
                mesh.report_failures()
                exit_code = 1
                break
            await woken(stop, 0.5)
    finally:
        console.print("stopping services ...")
        if not mesh.stop():
            exit_code = 1
        console.print("stopped" if exit_code == 0 else "[red]stopped with failures[/red]")
    return exit_code
