"""`maestro up --envoy`: the whole mesh through one real Envoy with mTLS.

A REST call to the gateway goes gateway → registry → compiler, every hop
through Envoy (the caller's outbound listener, then the callee's inbound mTLS
listener); each service sees the verified caller; a call to an inbound listener
without a client certificate is refused; SIGTERM stops Envoy and every service.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest
import yaml
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.registry.v1 import registry_service_pb2 as registry_pb
from maestro.registry.v1 import registry_service_pb2_grpc as registry_grpc
from maestro.runtime.settings import GRPC_SERVICES
from tests.conftest import REPO, free_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MAESTRO = Path(sys.executable).with_name("maestro")


@dataclass
class EnvoyMesh:
    process: subprocess.Popen[bytes]
    data_dir: Path
    gateway_port: int
    output: Path

    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(
            (self.data_dir / "envoy" / "envoy.yaml").read_text()
        )
        return loaded

    def listener_port(self, name: str) -> int:
        for listener in self.config()["static_resources"]["listeners"]:
            if listener["name"] == name:
                return int(listener["address"]["socket_address"]["port_value"])
        raise KeyError(name)

    def stats(self) -> dict[str, int]:
        admin = self.config()["admin"]["address"]["socket_address"]["port_value"]
        body = httpx.get(f"http://127.0.0.1:{admin}/stats?format=json", timeout=2).json()
        return {s["name"]: s["value"] for s in body["stats"] if isinstance(s.get("value"), int)}

    def rpc_logs(self, service: str) -> list[dict[str, Any]]:
        lines = (self.data_dir / "logs" / f"{service}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r.get("logger") == "maestro.rpc"]


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[EnvoyMesh]:
    env = dict(os.environ)
    *chosen, gateway_port = free_ports(2 * len(GRPC_SERVICES) + 1)
    for index, svc in enumerate(GRPC_SERVICES):
        env[f"MAESTRO_{svc.upper()}_PORT"] = str(chosen[2 * index])
        env[f"MAESTRO_{svc.upper()}_METRICS_PORT"] = str(chosen[2 * index + 1])
    env["MAESTRO_GATEWAY_PORT"] = str(gateway_port)
    data_dir = tmp_path / "data"
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(MAESTRO), "up", "--envoy", "--envoy-free-ports", "--data-dir", str(data_dir),
             "--ready-timeout", "25", "--topology", str(REPO / "deploy/mesh/topology.yaml")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        yield EnvoyMesh(process, data_dir, gateway_port, output)
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


def _reflected_services(address: str, authority: str) -> list[str]:
    channel = grpc.insecure_channel(address, options=[("grpc.default_authority", authority)])
    try:
        return list(ProtoReflectionDescriptorDatabase(channel).get_services())
    finally:
        channel.close()


async def _wait_ready(mesh: EnvoyMesh, http: httpx.AsyncClient, timeout: float) -> None:
    """Until the gateway's /readyz is 200: its health probes of every backend go
    through its Envoy outbound listener (routed by authority)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert mesh.process.poll() is None, mesh.output.read_text()
        try:
            ready = await http.get(f"http://127.0.0.1:{mesh.gateway_port}/readyz")
            if ready.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"mesh not ready in {timeout}s:\n{mesh.output.read_text()}")


async def test_a_rest_call_crosses_the_mesh_over_mtls(mesh: EnvoyMesh) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        await _wait_ready(mesh, http, timeout=30)
        created = await http.post(
            f"http://127.0.0.1:{mesh.gateway_port}/api/workflows",
            content=(REPO / "samples/workflows/hello.yaml").read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
    assert created.status_code == 201, created.text
    workflow = created.json()["name"]

    # Each hop went through Envoy with mTLS, and the callee saw the verified caller.
    stats = mesh.stats()
    assert stats["cluster.out_gateway_registry.upstream_rq_200"] >= 1
    assert stats["cluster.out_registry_compiler.upstream_rq_200"] >= 1
    assert stats["cluster.out_registry_compiler.ssl.handshake"] >= 1
    create = [r for r in mesh.rpc_logs("registry") if r["grpc_method"] == "CreateWorkflow"]
    assert [(r["caller_service"], r["caller_verified"]) for r in create] == [("gateway", True)]
    validate = [r for r in mesh.rpc_logs("compiler") if r["grpc_method"] == "ValidateWorkflow"]
    assert validate
    assert {(r["caller_service"], r["caller_verified"]) for r in validate} == {("registry", True)}
    assert create[0]["request_id"] in {r["request_id"] for r in validate}

    # Operators: one plaintext front address, routed by gRPC service name.
    front = f"127.0.0.1:{mesh.listener_port('outbound_operator')}"
    async with grpc.aio.insecure_channel(front) as channel:
        got = await registry_grpc.RegistryServiceStub(channel).GetWorkflow(
            registry_pb.GetWorkflowRequest(name=workflow),
            timeout=5,
            metadata=(("x-maestro-tenant", "default"),),
        )
        assert got.workflow.name == workflow
        digest = await compiler_grpc.CompilerServiceStub(channel).DigestWorkflow(
            compiler_pb.DigestWorkflowRequest(
                source=source_pb2.WorkflowSource(content=b"name: x\nsteps: []\n")
            ),
            timeout=5,
        )
        assert len(digest.digest) == 64

    # Reflection (grpcurl list) has no service name in its path: by authority.
    services = await asyncio.to_thread(_reflected_services, front, "registry.maestro.local")
    assert "maestro.registry.v1.RegistryService" in services

    # The registry's inbound listener refuses a caller without a client certificate.
    inbound = f"127.0.0.1:{mesh.listener_port('inbound_registry_0')}"
    ca = (mesh.data_dir / "certs" / "ca.crt").read_bytes()
    async with grpc.aio.secure_channel(
        inbound,
        grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.ssl_target_name_override", "registry.maestro.local")],
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry_grpc.RegistryServiceStub(channel).GetWorkflow(
                registry_pb.GetWorkflowRequest(name=workflow), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    children = psutil.Process(mesh.process.pid).children(recursive=True)
    assert len(children) == 8  # seven services and Envoy
    mesh.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(mesh.process.wait, 15)
    assert code == 0, mesh.output.read_text()
    _gone, alive = psutil.wait_procs(children, timeout=2)
    assert not alive, f"left behind: {alive}"
