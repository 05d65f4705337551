"""The signer's gRPC server.

Start-up migrates the database, loads the key-encryption key, bootstraps the
first signing key on a new database, and rebuilds the transparency log's tree,
checking it against the latest signed checkpoint: a signer whose KEK or log
is wrong refuses to start rather than serve. Readiness is the database
answering.
"""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider

from maestro.runtime import db
from maestro.runtime.policy import open_policy_gate
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.keys import KeyEncryptionKey
from maestro.services.signer.log import TransparencyLog
from maestro.services.signer.policy import PolicyGate, ServicePolicyGate
from maestro.services.signer.service import Signer
from maestro.services.signer.servicer import SignerServicer
from maestro.services.signer.store import SignerStore
from maestro.signer.v1 import signer_service_pb2, signer_service_pb2_grpc

SERVICE_NAMES = (signer_service_pb2.DESCRIPTOR.services_by_name["SignerService"].full_name,)


async def create_server(
    settings: SignerSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    policy: PolicyGate | None = None,
) -> GrpcServer:
    """Starts a signer server; ``server.port`` is the bound port.

    ``policy`` answers the signer's policy questions; None means the policy
    service at ``settings.policy_address`` (:class:`ServicePolicyGate`).
    """
    url = db.database_url(settings.database_url, settings.data_dir, "signer")
    store = SignerStore(db.create_sync_engine(url, pool_size=5))
    try:
        kek = KeyEncryptionKey.from_settings(settings)
        await asyncio.to_thread(store.migrate)
        log = TransparencyLog(store, kek, settings.origin)
        await log.open()
    except BaseException:
        await store.close()
        raise

    runtime_gate = None
    if policy is None:
        runtime_gate = open_policy_gate(
            settings.policy_address,
            caller="signer",
            ttl_seconds=settings.policy_cache_ttl_seconds,
            max_entries=settings.policy_cache_max_entries,
            timeout=settings.policy_timeout_seconds,
            tls=settings.tls_files(),
        )
        policy = ServicePolicyGate(runtime_gate)

    async def close() -> None:
        if runtime_gate is not None:
            await runtime_gate.close()
        await log.close()
        await store.close()

    signer = Signer(
        store,
        log,
        policy,
        verify_cache_seconds=settings.verify_cache_seconds,
        platform_tenant=settings.platform_tenant,
    )
    spec = ServiceSpec(
        name="signer",
        servicers=[
            (signer_service_pb2_grpc.add_SignerServiceServicer_to_server, SignerServicer(signer))
        ],
        service_names=SERVICE_NAMES,
        checks={"database": store.ping},
        on_stop=[close],
    )
    try:
        return await start_grpc_server(spec, settings, tracer_provider)
    except BaseException:
        await close()
        raise
