"""Settings of the policy service (environment prefix ``MAESTRO_POLICY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings
from maestro.services.policy.engine import EngineName

DEFAULT_BUNDLE = Path(__file__).resolve().with_name("bundles") / "default"
"""The bundle shipped with the service (inside the package, so that it is in
the wheel and the image)."""


class PolicySettings(ServiceSettings):
    """Policy settings: the engine, the bundle, the decision log and its database."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_POLICY_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["policy"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["policy"], ge=0, le=65535, description="/metrics port."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL (postgresql+psycopg://...); empty means SQLite "
        "<data_dir>/policy.db.",
    )
    bundle_path: Path = Field(
        DEFAULT_BUNDLE,
        description="The policy bundle: a directory of *.rego modules, data.json "
        "documents and a .manifest, a single .rego file, or a .tar.gz of the directory. "
        "Defaults to the bundle shipped with the service.",
    )
    bundle_poll_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often the bundle source is checked for changes (file sizes and "
        "modification times, then the content hash); a new revision is loaded, tested "
        "and activated without a restart.",
    )
    engine: EngineName = Field(
        "regopy",
        description="The Rego engine, in process: regopy (rego-cpp through Microsoft's "
        "official binding; the default) or regorus (Microsoft's Rust engine through the "
        "third-party gordon-to-regorus build; about ten times faster per decision, "
        "opt-in). Both pass one conformance suite on the shipped bundle.",
    )
    decision_entrypoint: str = Field(
        "data.maestro.authz.decision",
        description="The Rego rule that returns the decision document.",
    )
    decision_cache_size: int = Field(
        10_000,
        ge=0,
        description="Evaluations remembered per bundle revision (same input, same "
        "answer; such decisions are logged with cached=true); 0 disables. Emptied "
        "when the active revision changes.",
    )
    decision_log_durable: bool = Field(
        True,
        description="True: Decide returns only once its decision is committed to the "
        "log (concurrent decisions share one commit). False: Decide returns at once and "
        "the log is written in batches in the background (faster; a crash can lose the "
        "last batch, a clean shutdown flushes it).",
    )
    decision_log_batch_size: int = Field(
        500, ge=1, le=10_000, description="Most decisions written in one transaction."
    )
    decision_log_max_pending: int = Field(
        100_000,
        ge=1,
        description="Most decisions waiting for the log (non-durable mode); beyond it "
        "Decide fails with UNAVAILABLE until the log catches up.",
    )
    decision_retention_days: int = Field(
        400, ge=1, description="Decisions older than this are deleted from the log."
    )
    idempotency_cache_size: int = Field(
        10_000,
        ge=0,
        description="Recent request ids answered from memory on retry (older ones are "
        "looked up in the log).",
    )
