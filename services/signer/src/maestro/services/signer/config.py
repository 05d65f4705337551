"""Settings of the signer service (environment prefix ``MAESTRO_SIGNER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maestro.runtime.policy import PolicyGateSettings
from maestro.runtime.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, ServiceSettings


class SignerSettings(ServiceSettings, PolicyGateSettings):
    """Signer settings: the common server settings, its database, the log
    identity and where the key-encryption key comes from."""

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
    origin: str = Field(
        "maestro.dev/receipts/local",
        pattern=r"^[!-~]{1,255}$",
        description="Transparency-log identity written into every checkpoint (the signed "
        "note's first line); unique per deployment and never changed, verifiers pin it.",
    )
    kek: SecretStr | None = Field(
        None,
        description="Key-encryption key (MAESTRO_SIGNER_KEK): 32 bytes, standard base64. "
        "Encrypts the signing keys at rest. In production inject it from a secret store "
        "(Kubernetes Secret, KMS-decrypted at start-up); takes precedence over kek_file.",
    )
    kek_file: Path | None = Field(
        None,
        description="File holding the key-encryption key (32 bytes, standard base64), "
        "for example a mounted Secret (/etc/maestro/signer/keys/kek); refused when others "
        "can access it.",
    )
    generate_dev_kek: bool = Field(
        True,
        description="When neither kek nor kek_file is set: create (once, mode 0600) and "
        "use <data_dir>/signer.kek. For development only; set false in production so "
        "that a missing key-encryption key stops start-up instead.",
    )
    verify_cache_seconds: float = Field(
        300.0,
        ge=0,
        description="How long GetReceipt reuses a receipt's successful verification "
        "(unless keys were rotated since); 0 verifies on every read.",
    )
