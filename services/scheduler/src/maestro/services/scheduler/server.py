"""The scheduler's gRPC server: SchedulerService and TaskQueueService on one
store, one dispatch backend and one registry channel, and the relay that
signs execution receipts (off when ``signer_address`` is empty)."""

from __future__ import annotations

import os
import socket

from opentelemetry.sdk.trace import TracerProvider

from maestro.runtime import db
from maestro.runtime.clients import RegistryClient, open_channel
from maestro.runtime.policy import open_policy_gate
from maestro.runtime.receipts import open_receipt_relay
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.scheduler.v1 import scheduler_service_pb2, scheduler_service_pb2_grpc
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.dispatch import Dispatch, RedisDispatch, SqlDispatch
from maestro.services.scheduler.listing import Listing
from maestro.services.scheduler.metrics import SchedulerMetrics
from maestro.services.scheduler.plans import Plans
from maestro.services.scheduler.receipts import ExecutionReceipts
from maestro.services.scheduler.service import Scheduler
from maestro.services.scheduler.servicer import SchedulerServicer, TaskQueueServicer
from maestro.services.scheduler.store import Store
from maestro.services.scheduler.workers import WorkerAccess

TASK_QUEUE_SERVICE = scheduler_service_pb2.DESCRIPTOR.services_by_name["TaskQueueService"].full_name
SERVICE_NAMES = (
    scheduler_service_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name,
    TASK_QUEUE_SERVICE,
)


def build_dispatch(settings: SchedulerSettings, store: Store) -> Dispatch:
    """The configured dispatch backend."""
    if settings.dispatch == "redis":
        if not settings.redis_url:
            raise ValueError("MAESTRO_SCHEDULER_REDIS_URL is required with dispatch = redis")
        return RedisDispatch(
            store,
            settings.redis_url,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            lease_seconds=settings.lease_seconds,
            relay_seconds=settings.timer_interval_seconds,
        )
    return SqlDispatch(store, recheck_seconds=min(0.25, settings.timer_interval_seconds * 2))


async def create_server(
    settings: SchedulerSettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts a scheduler server; ``server.port`` is the bound port."""
    url = db.database_url(settings.database_url, settings.data_dir, "scheduler")
    engine = db.create_engine(url)
    store = Store(engine, db.create_sync_engine(url), receipts=bool(settings.signer_address))
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    spec = ServiceSpec(
        name="scheduler",
        servicers=[],
        service_names=SERVICE_NAMES,
        checks={"database": db.pinger(engine)},
        # The worker protocol: thousands of calls a second, each journaled.
        lean=(TASK_QUEUE_SERVICE,),
    )
    server = GrpcServer(spec, settings, tracer_provider)
    channel = open_channel(
        settings.registry_address,
        caller="scheduler",
        services=RegistryClient.SERVICES,
        tracer_provider=server.tracer_provider,
        max_message_bytes=settings.max_message_bytes,
        tls=settings.tls_files(),
    )
    registry = RegistryClient(
        channel, timeout=settings.client_timeout_seconds, address=settings.registry_address
    )
    dispatch = build_dispatch(settings, store)
    gate = open_policy_gate(
        settings.policy_address,
        caller="scheduler",
        ttl_seconds=settings.policy_cache_ttl_seconds,
        max_entries=settings.policy_cache_max_entries,
        timeout=settings.policy_timeout_seconds,
        tls=settings.tls_files(),
        tracer_provider=server.tracer_provider,
        registry=server.registry,
    )
    plans = Plans(store, registry, settings.alias_cache_seconds)
    relay = open_receipt_relay(
        settings,
        ExecutionReceipts(
            store,
            plans,
            registry,
            version_receipt_wait=settings.version_receipt_wait_seconds,
        ),
        service="scheduler",
        tls=settings.tls_files(),
        tracer_provider=server.tracer_provider,
        registry=server.registry,
    )
    scheduler = Scheduler(
        store,
        plans,
        dispatch,
        SchedulerMetrics(server.registry),
        lease_seconds=settings.lease_seconds,
        timer_interval=settings.timer_interval_seconds,
        max_poll_wait=settings.max_poll_wait_seconds,
        gate=gate,
        workers=WorkerAccess(settings.workers),
        on_pending_receipts=relay.kick,
    )

    async def close() -> None:
        await scheduler.stop()
        await relay.stop()
        await gate.close()
        await channel.close()
        await store.close()

    spec.on_stop = [close]
    spec.servicers = [
        (
            scheduler_service_pb2_grpc.add_SchedulerServiceServicer_to_server,
            SchedulerServicer(scheduler, Listing(store, scheduler)),
        ),
        (
            scheduler_service_pb2_grpc.add_TaskQueueServiceServicer_to_server,
            TaskQueueServicer(scheduler),
        ),
    ]
    try:
        await scheduler.start()
        relay.start()
        await server.start()
    except BaseException:
        await close()
        raise
    return server
