"""Settings of the executor service (environment prefix ``MAESTRO_EXECUTOR_``).

Handler secrets are the one thing read from the environment outside these
settings: ``secret://<name>`` references resolve from ``MAESTRO_SECRET_<NAME>``
variables (see :mod:`maestro.services.executor.secrets`), through
:func:`secret_environment`, which is the only place that hands the
environment out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, StringConstraints
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    ServiceSettings,
    default_address,
)

TaskQueueName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]{1,63}$")]
"""A task queue name as PollTasks accepts it."""


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
    task_queues: tuple[TaskQueueName, ...] = Field(
        ("default",), min_length=1, description="Task queues to poll."
    )
    concurrency: int = Field(
        8, ge=1, description="Most step tasks run at once, across all task queues."
    )
    identity: str = Field(
        "",
        max_length=256,
        description="Worker identity sent with PollTasks; empty means "
        "`executor-<hostname>/pid-<pid>`.",
    )
    poll_wait_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Long-poll wait of PollTasks; the call's gRPC deadline is 5 s longer.",
    )
    report_retry_seconds: float = Field(
        60.0,
        ge=0,
        description="How long CompleteTask/FailTask are retried while the scheduler is "
        "unavailable before the result is dropped (the lease then expires and the task "
        "is delivered again).",
    )
    report_batch_max: int = Field(
        64,
        ge=1,
        le=100,
        description="Most results sent in one ReportTasks call; 1 reports each result "
        "with its own CompleteTask/FailTask.",
    )
    report_batch_window_seconds: float = Field(
        0.002,
        ge=0,
        le=1,
        description="How long a finished task's result waits for others to share its "
        "ReportTasks call (it goes at once when `report_batch_max` results wait).",
    )
    shared_secrets: bool = Field(
        True,
        description="Whether `MAESTRO_SECRET_<NAME>` variables resolve `secret://` references "
        "for every tenant (after the tenant's own `MAESTRO_TENANT_SECRET_<TENANT>__<NAME>`). "
        "Set false on a worker that serves several tenants, so that no tenant's workflow "
        "can use a credential meant for another.",
    )
    http_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Default timeout of the `http` handler's requests when the step sets "
        "none; never past the task deadline.",
    )
    stop_grace_seconds: float = Field(
        5.0,
        ge=0,
        description="On shutdown, how long in-flight tasks may finish before they are "
        "cancelled (their leases then expire and the scheduler delivers them again).",
    )


def secret_environment() -> Mapping[str, str]:
    """The process environment, where ``secret://`` references resolve.

    A live view, so variables set after start-up are seen.
    """
    return os.environ
