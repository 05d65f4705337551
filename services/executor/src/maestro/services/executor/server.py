"""The executor's gRPC (admin/health) server and its worker.

The executor holds no state: it leases step tasks from the scheduler's task
queues and runs their handlers (see ``worker.py``). It is ready while the
scheduler it leases from is serving and it is not draining.
"""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace import TracerProvider

from maestro.executor.v1 import executor_service_pb2, executor_service_pb2_grpc
from maestro.runtime.clients import TaskQueueClient, open_channel, probe_health, service_authority
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.services.executor.config import ExecutorSettings, secret_environment
from maestro.services.executor.handlers.builtin import builtin_handlers
from maestro.services.executor.handlers.registry import load_handlers
from maestro.services.executor.secrets import EnvironmentSecrets
from maestro.services.executor.servicer import ExecutorAdminServicer
from maestro.services.executor.worker import Worker

SERVICE_NAMES = (
    executor_service_pb2.DESCRIPTOR.services_by_name["ExecutorAdminService"].full_name,
)


class DrainingError(RuntimeError):
    """Readiness failure while the worker drains."""


async def create_server(
    settings: ExecutorSettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts an executor server and its worker; ``server.port`` is the bound port."""

    async def scheduler() -> None:
        status = await probe_health(
            settings.scheduler_address,
            timeout=1.0,
            authority=service_authority("scheduler"),
            tls=settings.tls_files(),
        )
        if status != "SERVING":
            raise RuntimeError(f"scheduler at {settings.scheduler_address} is {status}")

    async def draining() -> None:
        if worker.draining:
            raise DrainingError("the worker is draining")

    async def close() -> None:
        try:
            await worker.stop()
        finally:
            await http_client.aclose()
            await channel.close()

    spec = ServiceSpec(
        name="executor",
        servicers=[],
        service_names=SERVICE_NAMES,
        checks={"scheduler": scheduler, "draining": draining},
        on_stop=[close],
    )
    # The tracer provider is the server's: build the server first, then the
    # channel and the worker that use it.
    server = GrpcServer(spec, settings, tracer_provider)
    channel = open_channel(
        settings.scheduler_address,
        caller="executor",
        services=TaskQueueClient.SERVICES,
        tracer_provider=server.tracer_provider,
        max_message_bytes=settings.max_message_bytes,
        tls=settings.tls_files(),
    )
    client = TaskQueueClient(
        channel, timeout=settings.client_timeout_seconds, address=settings.scheduler_address
    )
    http_client = httpx.AsyncClient(follow_redirects=False)
    handlers = load_handlers(
        builtin_handlers(http_client, http_timeout=settings.http_timeout_seconds)
    )
    worker = Worker(
        client,
        handlers,
        settings,
        secrets=EnvironmentSecrets(secret_environment(), shared=settings.shared_secrets),
        registry=server.registry,
        tracer_provider=server.tracer_provider,
    )
    spec.servicers = [
        (
            executor_service_pb2_grpc.add_ExecutorAdminServiceServicer_to_server,
            ExecutorAdminServicer(worker, on_drain=server.readiness.check_now),
        )
    ]
    try:
        await server.start()
    except BaseException:
        await http_client.aclose()
        await channel.close()
        raise
    worker.start()
    return server
