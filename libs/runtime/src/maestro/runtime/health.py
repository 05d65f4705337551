"""gRPC health driven by real readiness checks.

A service registers named async checks (database reachable, bundle loaded, ...).
Besides ``""`` and the service names (readiness), the name ``liveness`` is
SERVING from start to shutdown regardless of the checks.
They run at start and every ``interval`` seconds; the standard health service
reports SERVING for ``""`` and for each of the server's gRPC service names only
while every check passes, and NOT_SERVING otherwise. On shutdown the server
enters graceful shutdown: NOT_SERVING everywhere, and no later check can flip it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from grpc_health.v1 import health, health_pb2

from maestro.runtime.metrics import RpcMetrics
from maestro.runtime.periodic import Periodic

LIVENESS = "liveness"
"""Health name that is SERVING while the server runs, whatever its readiness:
for liveness/startup probes, so a database outage makes a pod unready but does
not get it restarted."""

Check = Callable[[], Awaitable[None]]
"""A readiness check: returns when ready, raises (any exception) when not."""

log = logging.getLogger("maestro.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Runs readiness checks and publishes the verdict through gRPC health."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        service_names: Sequence[str],
        checks: Mapping[str, Check],
        *,
        interval: float,
        metrics: RpcMetrics | None = None,
        check_timeout: float = 2.0,
    ) -> None:
        self._servicer = servicer
        self._names = ("", *service_names)
        self._checks = dict(checks)
        self._metrics = metrics
        self._timeout = check_timeout
        self._periodic = Periodic("readiness", interval, self.check_now)
        self.ready = False
        self.failures: dict[str, str] = {}

    async def mark_not_serving(self) -> None:
        """Publishes NOT_SERVING for every name (the state before the first check)."""
        for name in (*self._names, LIVENESS):
            await self._servicer.set(name, NOT_SERVING)

    async def check_now(self) -> bool:
        """Runs every check once and publishes the result; True when ready."""
        failures: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can
                # swallow a cancellation of the readiness loop.
                async with asyncio.timeout(self._timeout):
                    await check()
            except Exception as exc:  # any failure means not ready
                failures[name] = f"{type(exc).__name__}: {exc}"
        ready = not failures
        if ready != self.ready or failures != self.failures:
            log.log(
                logging.INFO if ready else logging.WARNING,
                "readiness %s",
                "SERVING" if ready else "NOT_SERVING",
                extra={"failed_checks": failures},
            )
        self.ready, self.failures = ready, failures
        status = SERVING if ready else NOT_SERVING
        for name in self._names:
            await self._servicer.set(name, status)
        if self._metrics is not None:
            self._metrics.set_ready(ready)
        return ready

    async def start(self) -> None:
        """Live from now on; first readiness check now, then in the background."""
        await self._servicer.set(LIVENESS, SERVING)
        await self.check_now()
        self._periodic.start()

    async def shutdown(self) -> None:
        """NOT_SERVING for good: stops checking and enters graceful shutdown."""
        await self._periodic.stop()
        self.ready = False
        if self._metrics is not None:
            self._metrics.set_ready(False)
        await self._servicer.enter_graceful_shutdown()
