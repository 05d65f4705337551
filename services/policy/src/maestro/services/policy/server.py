"""The policy's gRPC server.

It owns its database from the start (readiness is the database answering); its
RPCs are registered here as they are built.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from maestro.policy.v1 import policy_service_pb2
from maestro.runtime import db
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.services.policy.config import PolicySettings

SERVICE_NAMES = (policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,)


async def create_server(
    settings: PolicySettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts a policy server; ``server.port`` is the bound port."""
    engine = db.create_engine(db.database_url(settings.database_url, settings.data_dir, "policy"))
    spec = ServiceSpec(
        name="policy",
        servicers=[],
        service_names=SERVICE_NAMES,
        checks={"database": db.pinger(engine)},
        on_stop=[engine.dispose],
    )
    return await start_grpc_server(spec, settings, tracer_provider)
