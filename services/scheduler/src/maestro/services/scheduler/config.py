"""Settings of the scheduler service (environment prefix ``MAESTRO_SCHEDULER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings


class SchedulerSettings(ServiceSettings):
    """Scheduler settings: the common server settings and its database."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_SCHEDULER_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["scheduler"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["scheduler"], ge=0, le=65535, description="/metrics port."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL (postgresql+psycopg://...); empty means SQLite "
        "<data_dir>/scheduler.db.",
    )
