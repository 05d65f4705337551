"""Losing one of two replicas: Envoy's active gRPC health checks and outlier
detection take it out, and retries on another host (``previous_hosts``) absorb
the calls that hit it meanwhile; once it is ejected no client call fails.

The replicas are real compiler processes (``python -m maestro.services.compiler``),
and one is killed with SIGKILL. The client is a bare channel without grpc's own
retries, so every failure Envoy does not absorb would show.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime.clients import probe_health
from tests.conftest import free_port
from tests.integration.envoy.conftest import LocalMesh, StartMesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(45)]

DIGEST = compiler_pb.DigestWorkflowRequest(
    source=source_pb2.WorkflowSource(content=b"name: x\nsteps: []\n")
)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    started = []
    for index in range(2):
        port = free_port()
        env = {
            **os.environ,
            "MAESTRO_COMPILER_PORT": str(port),
            "MAESTRO_COMPILER_METRICS_PORT": "0",
            "MAESTRO_COMPILER_LOG_LEVEL": "WARNING",
        }
        with (tmp_path / f"compiler-{index}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "maestro.services.compiler"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((process, port))
    try:
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
            process.wait()


async def _wait_serving(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while await probe_health(f"127.0.0.1:{port}", timeout=0.5) != "SERVING":
        assert time.monotonic() < deadline, f"compiler on {port} not serving"
        await asyncio.sleep(0.1)


def _host_flags(mesh: LocalMesh, cluster: str, port: int) -> str:
    status, body = mesh.envoy.admin("/clusters")
    assert status == 200
    key = f"{cluster}::127.0.0.1:{port}::health_flags::"
    return next((line[len(key) :] for line in body.splitlines() if line.startswith(key)), "")


async def test_a_killed_replica_is_ejected_and_no_call_fails_after(
    replicas: list[tuple[subprocess.Popen[bytes], int]], start_mesh: StartMesh
) -> None:
    await asyncio.gather(*(_wait_serving(port) for _, port in replicas))
    mesh = await start_mesh({"compiler": [port for _, port in replicas]})
    cluster = "out_registry_compiler"
    dead_inbound = mesh.plan.inbound["compiler"][1]
    failures_before_ejection = 0
    async with grpc.aio.insecure_channel(mesh.outbound("registry")) as channel:
        stub = compiler_grpc.CompilerServiceStub(channel)
        for _ in range(20):  # both replicas serve
            assert len((await stub.DigestWorkflow(DIGEST, timeout=5)).digest) == 64
        # One Envoy holds both sides here, so the very first health checks can
        # race its own inbound listeners; the next round (1 s) passes.
        deadline = time.monotonic() + 5
        while mesh.stat(f"cluster.{cluster}.membership_healthy") != 2:
            assert time.monotonic() < deadline, "replicas never both healthy"
            await asyncio.sleep(0.1)

        victim, _ = replicas[1]
        victim.kill()
        victim.wait()

        # Keep calling until Envoy takes the dead replica out (bounded).
        deadline = time.monotonic() + 10
        while _host_flags(mesh, cluster, dead_inbound) == "healthy":
            assert time.monotonic() < deadline, "the dead replica was never ejected"
            try:
                await stub.DigestWorkflow(DIGEST, timeout=5)
            except grpc.aio.AioRpcError:
                failures_before_ejection += 1
            await asyncio.sleep(0.02)
        flags = _host_flags(mesh, cluster, dead_inbound)
        assert "failed_active_hc" in flags or "failed_outlier_check" in flags, flags

        for _ in range(100):
            assert len((await stub.DigestWorkflow(DIGEST, timeout=5)).digest) == 64

    # Retries on the other replica absorbed even the calls before the ejection.
    assert failures_before_ejection == 0
    assert mesh.stat(f"cluster.{cluster}.membership_healthy") == 1
