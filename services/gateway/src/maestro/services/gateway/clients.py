"""The gateway's typed clients of the backends it translates REST into."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from opentelemetry.sdk.trace import TracerProvider

from maestro.runtime.clients import (
    CompilerClient,
    RegistryClient,
    SchedulerClient,
    SignerClient,
    open_channel,
)
from maestro.services.gateway.config import GatewaySettings

CALLER = "gateway"


@dataclass(frozen=True)
class Clients:
    """One typed client per backend, each over its own long-lived channel."""

    registry: RegistryClient
    compiler: CompilerClient
    scheduler: SchedulerClient
    signer: SignerClient
    channels: tuple[grpc.aio.Channel, ...]

    @classmethod
    def open(cls, settings: GatewaySettings, tracer_provider: TracerProvider) -> Clients:
        """Opens the channels (lazily connecting) with retries and propagation."""
        registry_channel = open_channel(
            settings.registry_address,
            caller=CALLER,
            services=RegistryClient.SERVICES,
            tracer_provider=tracer_provider,
        )
        compiler_channel = open_channel(
            settings.compiler_address,
            caller=CALLER,
            services=CompilerClient.SERVICES,
            tracer_provider=tracer_provider,
        )
        scheduler_channel = open_channel(
            settings.scheduler_address,
            caller=CALLER,
            services=SchedulerClient.SERVICES,
            tracer_provider=tracer_provider,
        )
        signer_channel = open_channel(
            settings.signer_address,
            caller=CALLER,
            services=SignerClient.SERVICES,
            tracer_provider=tracer_provider,
        )
        timeout = settings.client_timeout_seconds
        return cls(
            registry=RegistryClient(
                registry_channel, timeout=timeout, address=settings.registry_address
            ),
            compiler=CompilerClient(
                compiler_channel, timeout=timeout, address=settings.compiler_address
            ),
            scheduler=SchedulerClient(
                scheduler_channel, timeout=timeout, address=settings.scheduler_address
            ),
            signer=SignerClient(signer_channel, timeout=timeout, address=settings.signer_address),
            channels=(registry_channel, compiler_channel, scheduler_channel, signer_channel),
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
