"""`maestro up` on an empty data directory: six gRPC services SERVING and the
gateway answering within 20 s, reflection and /metrics on each, and SIGTERM
stopping everything within 10 s with no process left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime.clients import probe_health
from maestro.runtime.settings import GRPC_SERVICES
from tests.conftest import REPO, free_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MAESTRO = Path(sys.executable).with_name("maestro")


@dataclass
class RunningMesh:
    process: subprocess.Popen[bytes]
    grpc_ports: dict[str, int]
    metrics_ports: dict[str, int]
    gateway_port: int
    output: Path


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[RunningMesh]:
    env = dict(os.environ)
    *chosen, gateway_port = free_ports(2 * len(GRPC_SERVICES) + 1)
    grpc_ports = dict(zip(GRPC_SERVICES, chosen, strict=False))
    metrics_ports = dict(zip(GRPC_SERVICES, chosen[len(GRPC_SERVICES) :], strict=True))
    for svc in GRPC_SERVICES:
        env[f"MAESTRO_{svc.upper()}_PORT"] = str(grpc_ports[svc])
        env[f"MAESTRO_{svc.upper()}_METRICS_PORT"] = str(metrics_ports[svc])
    env["MAESTRO_GATEWAY_PORT"] = str(gateway_port)
    data_dir = tmp_path / "data"
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(MAESTRO), "up", "--data-dir", str(data_dir), "--ready-timeout", "20"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield RunningMesh(process, grpc_ports, metrics_ports, gateway_port, output)
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


async def _wait_all_serving(mesh: RunningMesh, timeout: float) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() - started < timeout:
            assert mesh.process.poll() is None, mesh.output.read_text()
            statuses = await asyncio.gather(
                *(probe_health(f"127.0.0.1:{p}", timeout=0.5) for p in mesh.grpc_ports.values())
            )
            try:
                gateway_ok = (
                    await http.get(f"http://127.0.0.1:{mesh.gateway_port}/healthz")
                ).status_code == 200
            except httpx.HTTPError:
                gateway_ok = False
            if gateway_ok and all(s == "SERVING" for s in statuses):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    raise AssertionError(f"mesh not ready in {timeout}s:\n{mesh.output.read_text()}")


def _reflected_services(port: int) -> list[str]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        return list(ProtoReflectionDescriptorDatabase(channel).get_services())
    finally:
        channel.close()


async def test_maestro_up_serves_everything_and_stops_cleanly(mesh: RunningMesh) -> None:
    elapsed = await _wait_all_serving(mesh, timeout=20)
    assert elapsed < 20

    # Reflection: each gRPC port names its own maestro.<svc>.v1 service(s).
    for svc, port in mesh.grpc_ports.items():
        services = await asyncio.to_thread(_reflected_services, port)
        own = [s for s in services if s.startswith(f"maestro.{svc}.v1.")]
        assert own, f"{svc} reflects {services}"
        assert "grpc.health.v1.Health" in services

    # A real RPC, so the compiler's per-RPC counters have something to count.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.grpc_ports['compiler']}") as ch:
        reply = await compiler_grpc.CompilerServiceStub(ch).DigestWorkflow(
            compiler_pb.DigestWorkflowRequest(
                source=source_pb2.WorkflowSource(content=b"name: x\nsteps: []\n")
            ),
            timeout=5,
        )
    assert len(reply.digest) == 64

    async with httpx.AsyncClient(timeout=2) as http:
        for svc, port in mesh.metrics_ports.items():
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            assert "# TYPE grpc_server_handled_total counter" in text, svc
            assert 'grpc_service="grpc.health.v1.Health"' in text, svc
            assert f'maestro_service_ready{{service="{svc}"}} 1.0' in text, svc
        compiler_metrics = (
            await http.get(f"http://127.0.0.1:{mesh.metrics_ports['compiler']}/metrics")
        ).text
        assert (
            'grpc_server_handled_total{grpc_code="OK",grpc_method="DigestWorkflow",'
            'grpc_service="maestro.compiler.v1.CompilerService",grpc_type="unary"} 1.0'
        ) in compiler_metrics
        gateway = f"http://127.0.0.1:{mesh.gateway_port}"
        # /readyz reflects the gateway's periodic backend probes: it converges.
        deadline = time.monotonic() + 5
        ready = await http.get(f"{gateway}/readyz")
        while ready.status_code != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            ready = await http.get(f"{gateway}/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["backends"]) == set(GRPC_SERVICES)
        gateway_metrics = (await http.get(f"{gateway}/metrics")).text
        assert 'http_server_requests_total{method="GET",route="/readyz",status="200"}' in (
            gateway_metrics
        )
        missing = await http.get(f"{gateway}/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["reason"] == "ROUTE_NOT_FOUND"

    # The README quickstart: publish hello with the CLI, run it, follow it.
    cli_env = {
        **os.environ,
        "MAESTRO_CLI_REGISTRY_ADDRESS": f"127.0.0.1:{mesh.grpc_ports['registry']}",
        "MAESTRO_CLI_SCHEDULER_ADDRESS": f"127.0.0.1:{mesh.grpc_ports['scheduler']}",
    }
    for args in (
        ["workflows", "create", str(REPO / "samples/workflows/hello.yaml"), "--id", "hello"],
        ["workflows", "publish", "hello"],
        ["run", "hello", "--input", '{"who": "quickstart"}', "--follow", "--output", "json"],
    ):
        done = await asyncio.to_thread(
            subprocess.run,
            [str(MAESTRO), *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "hello, quickstart" in done.stdout
    assert "EXECUTION_STATE_SUCCEEDED" in done.stdout

    children = psutil.Process(mesh.process.pid).children(recursive=True)
    assert len(children) == 7
    started = time.monotonic()
    mesh.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(mesh.process.wait, 10)
    assert time.monotonic() - started < 10
    assert code == 0, mesh.output.read_text()
    _gone, alive = psutil.wait_procs(children, timeout=1)
    assert not alive, f"left behind: {alive}"
    assert "stopped" in mesh.output.read_text()


async def test_a_dying_service_is_reported(mesh: RunningMesh) -> None:
    await _wait_all_serving(mesh, timeout=20)
    children = {
        " ".join(p.cmdline()): p for p in psutil.Process(mesh.process.pid).children(recursive=True)
    }
    [policy] = [p for cmd, p in children.items() if cmd.endswith("maestro.services.policy")]
    policy.kill()
    code = await asyncio.to_thread(mesh.process.wait, 15)
    assert code == 1
    output = mesh.output.read_text()
    assert "policy exited with code -9" in output
    _gone, alive = psutil.wait_procs(list(children.values()), timeout=2)
    assert not alive
