"""Settings of the scheduler service (environment prefix ``MAESTRO_SCHEDULER_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.policy import PolicyGateSettings
from maestro.runtime.receipts import ReceiptSettings
from maestro.runtime.settings import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    ServiceSettings,
    default_address,
)

_EVERY_QUEUE: tuple[str, ...] = ("*",)


class SchedulerSettings(ServiceSettings, PolicyGateSettings, ReceiptSettings):
    """Scheduler settings: its database, its dispatch backend and its timers."""

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
    registry_address: str = Field(
        default_address("registry"), description="host:port of the registry (published plans)."
    )
    dispatch: Literal["sql", "redis"] = Field(
        "sql",
        description="Task dispatch index: `sql` (the scheduler's own table; SKIP LOCKED on "
        "PostgreSQL) or `redis` (Redis Streams fed from the journal's outbox).",
    )
    redis_url: str = Field("", description="redis://host:port/db for `dispatch = redis`.")
    workers: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {"executor": _EVERY_QUEUE},
        description="Who may be a worker: service identities (a certificate's on a TLS "
        "port, `x-maestro-caller` on a plaintext one, which the mesh vouches for) and the "
        "task queues each may poll, as shell-style patterns, e.g. "
        '`{"executor": ["*"], "payments-worker": ["payments", "payments.*"]}`. '
        "TaskQueueService refuses any other caller (PERMISSION_DENIED/POLICY_DENIED), and "
        "a worker polling another queue. A team's worker gets its own identity (a client "
        "in deploy/mesh/topology.yaml) and its queues here.",
    )
    lease_seconds: float = Field(
        10.0, gt=0.2, le=600, description="How long a task lease lasts without a heartbeat."
    )
    timer_interval_seconds: float = Field(
        0.2,
        gt=0,
        le=10,
        description="How often timers (delays, deadlines, expired leases, backoffs) are checked.",
    )
    alias_cache_seconds: float = Field(
        1.0,
        ge=0,
        description="How long a resolved alias or `latest` is reused before asking the "
        "registry again (exact versions are immutable and cached for good).",
    )
    version_receipt_wait_seconds: float = Field(
        60.0,
        ge=0,
        description="How long after an execution finished its receipt waits for the receipt "
        "of the workflow version that ran (the registry signs it a moment after the "
        "publish); after that it is signed without the link.",
    )
    max_poll_wait_seconds: float = Field(
        60.0, gt=0, le=60, description="Longest PollTasks long poll."
    )
