"""Settings of the executor service (environment prefix ``MAESTRO_EXECUTOR_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    ServiceSettings,
    default_address,
)


class ExecutorSettings(ServiceSettings):
    """Executor settings: where its tasks come from and how many run at once."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_EXECUTOR_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["executor"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["executor"], ge=0, le=65535, description="/metrics port."
    )
    scheduler_address: str = Field(
        default_address("scheduler"), description="host:port of the scheduler's task queues."
    )
    task_queues: tuple[str, ...] = Field(("default",), description="Task queues to poll.")
    concurrency: int = Field(8, ge=1, description="Most step tasks run at once.")
