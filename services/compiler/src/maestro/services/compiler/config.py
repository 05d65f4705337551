"""Settings of the compiler service (environment prefix ``MAESTRO_COMPILER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings


class CompilerSettings(ServiceSettings):
    """The compiler is stateless: only the common server settings."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_COMPILER_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["compiler"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["compiler"], ge=0, le=65535, description="/metrics port."
    )
