"""The policy service's gRPC server: PolicyService over one bundle manager, one
decision log and its database.

Readiness is the database answering and a bundle being active (until one is,
every Decide fails closed). Shutdown first ends the WatchBundleRevision streams
(long-lived: they would otherwise hold the server for its whole grace period),
then stops serving, then stops the bundle watcher, writes every decision still
queued for the log, and closes the database.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from maestro.policy.v1 import policy_service_pb2, policy_service_pb2_grpc
from maestro.runtime import db
from maestro.runtime.periodic import Periodic
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.services.policy.bundles import BundleManager
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.decision_log import DecisionLog
from maestro.services.policy.engine import create_engine
from maestro.services.policy.listing import Listing
from maestro.services.policy.metrics import PolicyMetrics
from maestro.services.policy.service import PolicyService
from maestro.services.policy.servicer import PolicyServicer
from maestro.services.policy.store import DecisionStore

POLICY_SERVICE = policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name
SERVICE_NAMES = (POLICY_SERVICE,)
RETENTION_INTERVAL_SECONDS = 3600.0


class PolicyServer(GrpcServer):
    """A GrpcServer that ends the revision watches before the graceful stop."""

    service: PolicyService | None = None

    async def stop(self, grace: float | None = None) -> None:
        if self.service is not None:
            self.service.end_watches()
        await super().stop(grace)


async def create_server(
    settings: PolicySettings, *, tracer_provider: TracerProvider | None = None
) -> PolicyServer:
    """Starts a policy server; ``server.port`` is the bound port."""
    url = db.database_url(settings.database_url, settings.data_dir, "policy")
    engine = db.create_engine(url)
    store = DecisionStore(engine, db.create_sync_engine(url, pool_size=2))
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise

    async def bundle_loaded() -> None:
        if bundles.active is None:
            raise RuntimeError(f"no valid policy bundle loaded from {bundles.source}")

    spec = ServiceSpec(
        name="policy",
        servicers=[],
        service_names=SERVICE_NAMES,
        checks={"database": db.pinger(engine), "bundle": bundle_loaded},
        # Every decision is in the decision log (with its request id, caller and
        # inputs): no span or access-log line per successful Decide on top.
        lean=[f"{POLICY_SERVICE}/Decide", f"{POLICY_SERVICE}/BatchDecide"],
    )
    server = PolicyServer(spec, settings, tracer_provider)
    metrics = PolicyMetrics(server.registry)
    bundles = BundleManager(
        settings.bundle_path,
        create_engine(settings.engine, settings.decision_entrypoint),
        poll_seconds=settings.bundle_poll_seconds,
        on_reload=metrics.reloaded,
    )
    decision_log = DecisionLog(
        store,
        durable=settings.decision_log_durable,
        batch_size=settings.decision_log_batch_size,
        max_pending=settings.decision_log_max_pending,
        on_batch=metrics.logged,
    )
    service = PolicyService(
        bundles,
        store,
        decision_log,
        metrics,
        decision_cache_size=settings.decision_cache_size,
        idempotency_cache_size=settings.idempotency_cache_size,
        platform_tenant=settings.platform_tenant,
    )
    server.service = service
    retention = Periodic(
        "policy-retention",
        RETENTION_INTERVAL_SECONDS,
        lambda: service.trim_log(settings.decision_retention_days),
    )

    async def close() -> None:
        await bundles.stop()
        await retention.stop()
        await decision_log.close(timeout=max(settings.grace_seconds, 1.0))
        await store.close()

    spec.on_stop = [close]
    spec.servicers = [
        (
            policy_service_pb2_grpc.add_PolicyServiceServicer_to_server,
            PolicyServicer(service, Listing(store, service)),
        )
    ]
    try:
        decision_log.start()
        await bundles.start()
        retention.start()
        await server.start()
    except BaseException:
        await close()
        raise
    return server
