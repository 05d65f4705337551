"""Settings of the compiler service (environment prefix ``MAESTRO_COMPILER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings
from maestro.services.compiler.service import DEFAULT_DOCUMENT_CACHE_SIZE


class CompilerSettings(ServiceSettings):
    """The compiler keeps no state beyond a bounded cache of recent documents'
    work (keyed by their whole source, so never stale)."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_COMPILER_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["compiler"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["compiler"], ge=0, le=65535, description="/metrics port."
    )
    document_cache_size: int = Field(
        DEFAULT_DOCUMENT_CACHE_SIZE,
        ge=0,
        description="Recent documents whose parse, analysis, normal form, digest and plan "
        "are kept, so that validating, compiling, digesting and diffing the same source "
        "share one computation; 0 keeps none.",
    )
