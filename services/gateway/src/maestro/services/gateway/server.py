"""The gateway's HTTP server (uvicorn), startable in-process on any port."""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from maestro.runtime.tracing import build_tracer_provider
from maestro.services.gateway.app import create_app
from maestro.services.gateway.backends import BackendMonitor
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.config import GatewaySettings

log = logging.getLogger("maestro.gateway")


class GatewayServer:
    """A started gateway; ``port`` is the bound HTTP port."""

    name = "gateway"

    def __init__(
        self, settings: GatewaySettings, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider or build_tracer_provider(
            "gateway", settings.trace_exporter, settings.otlp_endpoint
        )
        self._owns_provider = tracer_provider is None
        self.registry = CollectorRegistry()
        self.backends = BackendMonitor(
            settings.backend_addresses(),
            timeout=settings.client_timeout_seconds,
            interval=settings.readiness_interval_seconds,
        )
        # One channel per backend the API calls, for the server's lifetime.
        self.clients = Clients.open(settings, self.tracer_provider)
        self.app = create_app(
            settings, self.backends, self.registry, self.clients, self.tracer_provider
        )
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        # IPPROTO_TCP, not 0: asyncio turns TCP_NODELAY on for accepted
        # connections only when the listening socket says TCP, and without it
        # Nagle plus delayed ACKs added ~40 ms to every kept-alive request.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="gateway-http")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises the start-up error
                raise OSError("gateway stopped during start-up")
            await asyncio.sleep(0.01)
        await self.backends.start()
        log.info("gateway serving on http://%s:%d", self.settings.host, self.port)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        await self.backends.stop()
        await self.clients.close()
        if self._owns_provider:
            self.tracer_provider.shutdown()
        self._server = None


async def create_server(
    settings: GatewaySettings, *, tracer_provider: TracerProvider | None = None
) -> GatewayServer:
    """Starts a gateway; ``server.port`` is the bound port."""
    server = GatewayServer(settings, tracer_provider=tracer_provider)
    await server.start()
    return server
