"""Settings of the registry service (environment prefix ``MAESTRO_REGISTRY_``)."""

from __future__ import annotations

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


class RegistrySettings(ServiceSettings, PolicyGateSettings, ReceiptSettings):
    """Registry settings: its database, the compiler it validates with and the
    signer of its version-manifest receipts."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_REGISTRY_", extra="ignore", frozen=True)

    port: int = Field(DEFAULT_GRPC_PORTS["registry"], ge=0, le=65535, description="gRPC port.")
    metrics_port: int | None = Field(
        DEFAULT_METRICS_PORTS["registry"], ge=0, le=65535, description="/metrics port."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL (postgresql+psycopg://...); empty means SQLite "
        "<data_dir>/registry.db.",
    )
    compiler_address: str = Field(
        default_address("compiler"), description="host:port of the compiler service."
    )
    receipt_inline_timeout_seconds: float = Field(
        1.0,
        gt=0,
        description="Most seconds a publish waits for its version-manifest receipt to be "
        "signed; after that (or at once when the signer is unreachable) the version is "
        "returned without a receipt and attached one in the background. At most "
        "receipt_timeout_seconds.",
    )
