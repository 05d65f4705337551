"""The registry's gRPC server."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from maestro.registry.v1 import registry_service_pb2, registry_service_pb2_grpc
from maestro.runtime import db
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.policy import open_policy_gate
from maestro.runtime.receipts import open_receipt_relay
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.services.registry.clients import CompilerAdapter
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.receipts import VersionAttestor, VersionManifests
from maestro.services.registry.service import Registry
from maestro.services.registry.servicer import RegistryServicer
from maestro.services.registry.store import RegistryStore

SERVICE_NAME = registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


async def create_server(
    settings: RegistrySettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts a registry server; ``server.port`` is the bound port."""
    engine = db.create_engine(db.database_url(settings.database_url, settings.data_dir, "registry"))
    store = RegistryStore(engine)
    try:
        await store.migrate()
    except BaseException:
        await engine.dispose()
        raise

    async def close() -> None:
        await relay.stop()
        await gate.close()
        await channel.close()
        await engine.dispose()

    # The tracer provider is the server's; build the server first, then the channel
    # that uses it, so outgoing calls are children of the incoming span.
    spec = ServiceSpec(
        name="registry",
        servicers=[],
        service_names=[SERVICE_NAME],
        # Readiness is the registry's own database only: reads keep working while
        # the compiler is down, and writes then fail with a typed UNAVAILABLE.
        checks={"database": db.pinger(engine)},
        on_stop=[close],
    )
    server = GrpcServer(spec, settings, tracer_provider)
    channel = open_channel(
        settings.compiler_address,
        caller="registry",
        services=CompilerClient.SERVICES,
        tracer_provider=server.tracer_provider,
        max_message_bytes=settings.max_message_bytes,
        tls=settings.tls_files(),
    )
    compiler_client = CompilerClient(
        channel, timeout=settings.client_timeout_seconds, address=settings.compiler_address
    )
    gate = open_policy_gate(
        settings.policy_address,
        caller="registry",
        ttl_seconds=settings.policy_cache_ttl_seconds,
        max_entries=settings.policy_cache_max_entries,
        timeout=settings.policy_timeout_seconds,
        tls=settings.tls_files(),
        tracer_provider=server.tracer_provider,
        registry=server.registry,
    )
    # Version-manifest receipts (off when signer_address is empty): queued in
    # each publish's transaction, signed inline within a short deadline, and
    # otherwise by the relay in the background.
    manifests = VersionManifests(store)
    relay = open_receipt_relay(
        settings,
        manifests,
        service="registry",
        tls=settings.tls_files(),
        tracer_provider=server.tracer_provider,
        registry=server.registry,
    )
    attestor = None
    if relay.enabled:
        inline = min(settings.receipt_inline_timeout_seconds, settings.receipt_timeout_seconds)
        attestor = VersionAttestor(manifests, relay, timeout=inline)
    registry = Registry(store, CompilerAdapter(compiler_client), gate, attestor)
    spec.servicers = [
        (
            registry_service_pb2_grpc.add_RegistryServiceServicer_to_server,
            RegistryServicer(registry),
        )
    ]
    await server.start()
    relay.start()
    return server
