"""The ``grpc.aio`` server bootstrap every Maestro service uses.

A service describes itself with a :class:`ServiceSpec` (servicers, readiness
checks, shutdown hooks); :class:`GrpcServer` adds the rest the same way for all:
interceptors (tracing, context, metrics, errors), standard health driven by the
readiness checks, server reflection, a Prometheus ``/metrics`` endpoint, and a
graceful stop (NOT_SERVING, then ``stop(grace)``, then the hooks).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from maestro.runtime.health import Check, Readiness
from maestro.runtime.interceptors import ServerInterceptor, UnlessLean
from maestro.runtime.logs import configure_logging
from maestro.runtime.metrics import MetricsServer, RpcMetrics
from maestro.runtime.settings import ServiceSettings
from maestro.runtime.tracing import build_tracer_provider

log = logging.getLogger("maestro.server")

AddServicer = Callable[[Any, grpc.aio.Server], None]


@dataclass
class ServiceSpec:
    """What a service contributes to its server.

    Attributes:
        name: short service name, e.g. ``registry``.
        servicers: ``(add_XServicer_to_server, servicer)`` pairs.
        service_names: full gRPC service names served (for health/reflection),
            e.g. ``maestro.registry.v1.RegistryService``.
        checks: named readiness checks; health is SERVING only while all pass.
        on_stop: async hooks run after the server stopped (close stores, channels).
        lean: full gRPC service names (``maestro.scheduler.v1.TaskQueueService``)
            or methods (``<service>/<method>``) served lean: no trace span, no
            in-flight gauge or latency histogram, and an access-log record only
            when the call fails; each call is still counted
            (``grpc_server_handled_total``), runs with its call context and has
            its errors mapped and logged as everywhere else. For high-rate
            machine-to-machine protocols whose every effect is recorded anyway
            (the worker protocol: polls, heartbeats, reports).
    """

    name: str
    servicers: Sequence[tuple[AddServicer, object]]
    service_names: Sequence[str]
    checks: Mapping[str, Check] = field(default_factory=dict)
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()
    lean: Collection[str] = ()


class Server(Protocol):
    """Anything ``serve_until_signal`` can run: a gRPC server or the gateway."""

    name: str
    port: int

    async def stop(self, grace: float | None = None) -> None: ...


class GrpcServer:
    """A started Maestro gRPC server (see :func:`start_grpc_server`)."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: ServiceSettings,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.settings = settings
        sys.setswitchinterval(settings.gil_switch_interval_seconds)
        self.tracer_provider = tracer_provider or build_tracer_provider(
            spec.name, settings.trace_exporter, settings.otlp_endpoint
        )
        self._owns_provider = tracer_provider is None
        self.registry = CollectorRegistry()
        self.metrics = RpcMetrics(self.registry, spec.name)
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        lean = frozenset(spec.lean)
        self.server = grpc.aio.server(
            interceptors=[
                UnlessLean(aio_server_interceptor(tracer_provider=self.tracer_provider), lean),
                ServerInterceptor(
                    spec.name,
                    self.metrics,
                    anonymous_as_local_admin=settings.anonymous_as_local_admin,
                    lean=lean,
                    tls=settings.tls_files() is not None,
                ),
            ],
            options=options,
        )
        self.health = health.aio.HealthServicer()
        self.readiness = Readiness(
            self.health,
            spec.service_names,
            spec.checks,
            interval=settings.readiness_interval_seconds,
            metrics=self.metrics,
        )
        self.port = 0
        self.metrics_port: int | None = None
        self._metrics_server: MetricsServer | None = None
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> int:
        """Binds, starts serving and runs the first readiness check.

        Returns the bound port (useful with ``port=0``).
        """
        await self.readiness.mark_not_serving()
        for add, servicer in self.spec.servicers:
            add(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                *self.spec.service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        bind = f"{self.settings.host}:{self.settings.port}"
        tls = self.settings.tls_files()
        if tls is None:
            self.port = self.server.add_insecure_port(bind)
        else:
            self.port = self.server.add_secure_port(
                bind,
                tls.server_credentials(require_client_auth=self.settings.tls_require_client_auth),
            )
        if self.port == 0:
            raise OSError(f"{self.name}: cannot bind {self.settings.host}:{self.settings.port}")
        if self.settings.metrics_port is not None:
            self._metrics_server = MetricsServer(
                self.registry, self.settings.metrics_host, self.settings.metrics_port
            )
            self.metrics_port = self._metrics_server.port
        await self.server.start()
        await self.readiness.start()
        log.info(
            "%s serving on %s",
            self.name,
            self.address,
            extra={
                "port": self.port,
                "tls": tls is not None,
                "metrics_port": self.metrics_port,
                "ready": self.readiness.ready,
            },
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, then stop with ``grace`` seconds for in-flight RPCs."""
        if self._stopped.is_set():
            return
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("%s stopping", self.name, extra={"grace_seconds": grace})
        await self.readiness.shutdown()
        try:
            await self.server.stop(grace)
        finally:
            for hook in self.spec.on_stop:
                try:
                    await hook()
                except Exception:
                    log.exception("%s: shutdown hook failed", self.name)
            if self._metrics_server is not None:
                self._metrics_server.stop()
            if self._owns_provider:
                self.tracer_provider.shutdown()
            self._stopped.set()


async def start_grpc_server(
    spec: ServiceSpec,
    settings: ServiceSettings,
    tracer_provider: TracerProvider | None = None,
) -> GrpcServer:
    """Builds and starts a server for ``spec``; returns it with its bound port."""
    server = GrpcServer(spec, settings, tracer_provider)
    await server.start()
    return server


async def serve_until_signal(
    starters: Sequence[Callable[[], Awaitable[Server]]],
    *,
    service: str,
    log_level: str = "INFO",
    log_format: str = "json",
) -> None:
    """Starts servers, runs until SIGTERM/SIGINT, then stops them in reverse.

    Used by ``python -m maestro.services.<svc>`` and ``maestro serve``; several
    starters run several services in one process.
    """
    configure_logging(service, log_level, log_format)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers: list[Server] = []
    try:
        for start in starters:
            servers.append(await start())
        await stop.wait()
    finally:
        for server in reversed(servers):
            await server.stop()


class LogSettings(Protocol):
    """The part of any service's settings that ``run`` needs."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


def run(
    service: str,
    settings: LogSettings,
    create_server: Callable[[Any], Awaitable[Server]],
) -> None:
    """Entry point of ``python -m maestro.services.<service>``: one service alone."""
    asyncio.run(
        serve_until_signal(
            [lambda: create_server(settings)],
            service=service,
            log_level=settings.log_level,
            log_format=settings.log_format,
        )
    )
