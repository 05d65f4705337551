"""Settings of the signer service (environment prefix ``MAESTRO_SIGNER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings


class SignerSettings(ServiceSettings):
    """Signer settings: the common server settings and its database."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_SIGNER_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["signer"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["signer"], ge=0, le=65535, description="/metrics port."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL (postgresql+psycopg://...); empty means SQLite "
        "<data_dir>/signer.db.",
    )
