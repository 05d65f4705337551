"""The gateway's view of the gRPC backends: one channel each, health polled."""

from __future__ import annotations

import asyncio
import logging

import grpc

from maestro.runtime.clients import HealthClient, service_authority
from maestro.runtime.errors import MaestroError, NotFoundError
from maestro.runtime.periodic import Periodic

log = logging.getLogger("maestro.gateway.backends")


class BackendMonitor:
    """Keeps the last known gRPC health status of every backend."""

    def __init__(self, addresses: dict[str, str], *, timeout: float, interval: float) -> None:
        self.addresses = dict(addresses)
        # The authority names the backend, so health checks through an Envoy
        # outbound listener (one address for all backends) reach the right one.
        self._channels = {
            name: grpc.aio.insecure_channel(
                addr, options=[("grpc.default_authority", service_authority(name))]
            )
            for name, addr in addresses.items()
        }
        self._clients = {
            name: HealthClient(ch, timeout=timeout, address=addresses[name])
            for name, ch in self._channels.items()
        }
        self.statuses: dict[str, str] = dict.fromkeys(addresses, "UNKNOWN")
        self._periodic = Periodic("backend-health", interval, self.refresh)

    async def _probe(self, name: str) -> str:
        try:
            return await self._clients[name].check()
        except NotFoundError:
            return "SERVICE_UNKNOWN"
        except MaestroError:
            return "UNREACHABLE"

    async def refresh(self) -> dict[str, str]:
        """Probes every backend now."""
        names = list(self._clients)
        results = await asyncio.gather(*(self._probe(n) for n in names))
        changed = {n: s for n, s in zip(names, results, strict=True) if self.statuses.get(n) != s}
        self.statuses.update(zip(names, results, strict=True))
        if changed:
            log.info("backend health changed", extra={"backends": changed})
        return dict(self.statuses)

    @property
    def all_serving(self) -> bool:
        return all(s == "SERVING" for s in self.statuses.values())

    async def start(self) -> None:
        await self.refresh()
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        for channel in self._channels.values():
            await channel.close()
