"""The executor's gRPC (admin/health) server.

The executor holds no state; it is ready when the scheduler it leases tasks
from is serving.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from maestro.executor.v1 import executor_service_pb2
from maestro.runtime.clients import probe_health, service_authority
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.services.executor.config import ExecutorSettings

SERVICE_NAMES = (
    executor_service_pb2.DESCRIPTOR.services_by_name["ExecutorAdminService"].full_name,
)


async def create_server(
    settings: ExecutorSettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts an executor server; ``server.port`` is the bound port."""

    async def scheduler() -> None:
        status = await probe_health(
            settings.scheduler_address,
            timeout=1.0,
            authority=service_authority("scheduler"),
            tls=settings.tls_files(),
        )
        if status != "SERVING":
            raise RuntimeError(f"scheduler at {settings.scheduler_address} is {status}")

    spec = ServiceSpec(
        name="executor",
        servicers=[],
        service_names=SERVICE_NAMES,
        checks={"scheduler": scheduler},
    )
    return await start_grpc_server(spec, settings, tracer_provider)
