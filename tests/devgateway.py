"""A real gateway in dev auth mode for integration tests, and the dev JWTs it
accepts (what ``maestro dev-token`` issues)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider

from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.devkey import DevClaims, issue_dev_token, load_or_create_dev_key
from maestro.services.gateway.server import GatewayServer, create_server
from tests.conftest import free_port

BACKENDS = ("compiler", "registry", "scheduler", "executor", "policy", "signer")


@dataclass
class DevGateway:
    """The running gateway, an HTTP client for it and its dev signing key."""

    http: httpx.AsyncClient
    data_dir: Path
    server: GatewayServer

    def token(self, tenant: str, subject: str, *roles: str, **claims: str) -> dict[str, str]:
        """An ``Authorization`` header with a dev JWT for that identity;
        ``claims``: clearance, purpose, legal_basis, reason_for_access."""
        key = load_or_create_dev_key(self.data_dir)
        dev = DevClaims(tenant=tenant, subject=subject, roles=roles, **claims)
        token = issue_dev_token(key, dev, audience="maestro", ttl_seconds=600)
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, who: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, path, headers=who, **kwargs)


@asynccontextmanager
async def dev_gateway(data_dir: Path, **addresses: str) -> AsyncIterator[DevGateway]:
    """A gateway on a free port in dev auth mode, its key in ``data_dir``.

    Args:
        addresses: ``<backend>=host:port`` for the backends the test runs
            (``compiler``, ``registry``, ``scheduler``, ``executor``,
            ``policy``, ``signer``); the others point at an unused port.
    """
    os.makedirs(data_dir, exist_ok=True)
    load_or_create_dev_key(data_dir)  # what `maestro dev-token` does first
    unknown = set(addresses) - set(BACKENDS)
    if unknown:
        raise ValueError(f"unknown backends {sorted(unknown)}")
    settings: dict[str, Any] = {
        f"{backend}_address": addresses.get(backend) or f"127.0.0.1:{free_port()}"
        for backend in BACKENDS
    }
    server = await create_server(
        GatewaySettings(port=0, data_dir=data_dir, auth_mode="dev", **settings),
        tracer_provider=TracerProvider(),
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=20
        ) as http:
            yield DevGateway(http, data_dir, server)
    finally:
        await server.stop()
