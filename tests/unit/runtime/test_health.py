"""gRPC health driven by readiness checks, against a real server."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.compiler.v1.compiler_service_pb2 import DESCRIPTOR as COMPILER_FILE
from maestro.runtime.clients import probe_health
from maestro.runtime.health import Readiness
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.services.compiler.config import CompilerSettings

SERVICE = COMPILER_FILE.services_by_name["CompilerService"].full_name


class Switch:
    """A readiness check that fails until turned on."""

    def __init__(self) -> None:
        self.on = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.on:
            raise ConnectionError("database unreachable")


def ready_gauge(server: GrpcServer) -> float | None:
    return server.registry.get_sample_value("maestro_service_ready", {"service": "health-test"})


async def test_health_follows_readiness_and_shutdown() -> None:
    switch = Switch()
    spec = ServiceSpec(
        name="health-test",
        servicers=[
            (
                compiler_grpc.add_CompilerServiceServicer_to_server,
                compiler_grpc.CompilerServiceServicer(),
            ),
        ],
        service_names=[SERVICE],
        checks={"db": switch},
    )
    server = GrpcServer(spec, CompilerSettings(port=0, metrics_port=None))
    try:
        await server.start()
        assert switch.calls >= 1
        assert not server.readiness.ready
        assert server.readiness.failures == {"db": "ConnectionError: database unreachable"}
        assert await probe_health(server.address) == "NOT_SERVING"
        assert await probe_health(server.address, service=SERVICE) == "NOT_SERVING"
        assert await probe_health(server.address, service="no.such.Service") == "SERVICE_UNKNOWN"
        assert ready_gauge(server) == 0

        switch.on = True
        assert await server.readiness.check_now() is True
        assert server.readiness.failures == {}
        assert await probe_health(server.address) == "SERVING"
        assert await probe_health(server.address, service=SERVICE) == "SERVING"
        assert ready_gauge(server) == 1

        switch.on = False
        assert await server.readiness.check_now() is False
        assert await probe_health(server.address, service=SERVICE) == "NOT_SERVING"
        switch.on = True
        assert await server.readiness.check_now() is True
    finally:
        await server.stop(0)

    assert await probe_health(server.address) == "UNREACHABLE"
    assert ready_gauge(server) == 0
    for name in ("", SERVICE):
        response = await server.health.Check(health_pb2.HealthCheckRequest(service=name), None)
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING, name
    # A passing check after shutdown cannot flip it back.
    await server.readiness.check_now()
    response = await server.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), None)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_check_timeout_counts_as_failure() -> None:
    async def hangs() -> None:
        await asyncio.sleep(10)

    servicer = health.aio.HealthServicer()
    readiness = Readiness(servicer, [SERVICE], {"slow": hangs}, interval=60, check_timeout=0.05)
    assert await readiness.check_now() is False
    assert set(readiness.failures) == {"slow"}
    assert readiness.failures["slow"].startswith("TimeoutError")
    response = await servicer.Check(health_pb2.HealthCheckRequest(service=SERVICE), None)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_liveness_stays_serving_while_readiness_fails() -> None:
    """`liveness` is SERVING from start to stop even while a readiness check
    fails, so orchestrators restart only dead processes, not unready ones."""
    from maestro.runtime.clients import probe_health
    from maestro.runtime.health import LIVENESS
    from maestro.runtime.server import GrpcServer, ServiceSpec
    from maestro.services.compiler.config import CompilerSettings

    async def broken() -> None:
        raise ConnectionError("database down")

    server = GrpcServer(
        ServiceSpec(name="probe", servicers=[], service_names=["x.v1.X"], checks={"db": broken}),
        CompilerSettings(port=0, metrics_port=None),
    )
    await server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        assert await probe_health(address) == "NOT_SERVING"
        assert await probe_health(address, service="x.v1.X") == "NOT_SERVING"
        assert await probe_health(address, service=LIVENESS) == "SERVING"
    finally:
        await server.stop(0)
    assert server.health._server_status[LIVENESS] != 1  # not SERVING once stopped
