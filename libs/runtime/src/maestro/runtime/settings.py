"""Typed settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own environment prefix
(``MAESTRO_<SVC>_``), its default ports and any settings of its own. This module
(through pydantic-settings) is the only place that reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.runtime.tls import TlsFiles

# Default ports of the mesh, in one place: gRPC port and Prometheus /metrics port.
DEFAULT_GRPC_PORTS: dict[str, int] = {
    "compiler": 50051,
    "registry": 50052,
    "scheduler": 50053,
    "executor": 50054,
    "policy": 50055,
    "signer": 50056,
}
DEFAULT_METRICS_PORTS: dict[str, int] = {
    "compiler": 9451,
    "registry": 9452,
    "scheduler": 9453,
    "executor": 9454,
    "policy": 9455,
    "signer": 9456,
}
DEFAULT_GATEWAY_PORT = 8080
GRPC_SERVICES: tuple[str, ...] = tuple(DEFAULT_GRPC_PORTS)
"""The six gRPC services, in start-up order (dependencies first is not
required: clients connect lazily and health reflects readiness)."""
ALL_SERVICES: tuple[str, ...] = (*GRPC_SERVICES, "gateway")


def default_address(service: str) -> str:
    """Loopback address of a service on its default port."""
    return f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}"


class ServiceSettings(BaseSettings):
    """Settings every server has. Subclasses set ``env_prefix`` and defaults."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface the gRPC server binds to.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_host: str = Field("127.0.0.1", description="Interface of the /metrics server.")
    metrics_port: int | None = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics HTTP server; 0 picks a free one; "
        "None disables it.",
    )
    data_dir: Path = Field(
        Path(".maestro/data"), description="Directory for this service's embedded state."
    )
    log_level: str = Field("INFO", description="Root log level (DEBUG, INFO, WARNING, ...).")
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line; text: for humans."
    )
    anonymous_as_local_admin: bool = Field(
        True,
        description="Embedded/dev default: a call that names no subject acts as the local "
        "admin (`local-admin`, role `admin`) of its tenant (`default` when none), as the "
        "gateway's dev mode does. Set false in production: such calls are then denied.",
    )
    platform_tenant: str = Field(
        "default",
        min_length=1,
        description="The tenant that runs the platform. The signing key and the policy "
        "bundle serve every tenant, so only this tenant's principals (with the role the "
        "policy asks) may rotate the key and read or reload the bundle. `default` suits a "
        "local or single-tenant install; a shared deployment names an operators' tenant "
        "that no customer has.",
    )
    trace_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="Where finished spans go."
    )
    otlp_endpoint: str = Field(
        "127.0.0.1:4317", description="OTLP/gRPC collector address when trace_exporter=otlp."
    )
    gil_switch_interval_seconds: float = Field(
        0.0005,
        gt=0,
        le=0.1,
        description="Python's thread switch interval for the process "
        "(`sys.setswitchinterval`; Python's default is 0.005). Every SQL statement on a "
        "service's writer and reader threads gives up the GIL and must win it back from "
        "the busy event loop; at Python's default that wait dominates a transaction under "
        "load. Process-wide: the last server started in a process sets it.",
    )
    grace_seconds: float = Field(
        5.0, ge=0, description="How long in-flight RPCs may finish on shutdown."
    )
    readiness_interval_seconds: float = Field(
        2.0, gt=0, description="How often readiness checks re-run to drive gRPC health."
    )
    client_timeout_seconds: float = Field(
        5.0, gt=0, description="Default deadline of calls this service makes to peers."
    )
    max_message_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest gRPC message accepted or sent."
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain: with tls_key_file the server serves native "
        "gRPC TLS and presents it to peers as its client certificate; None: plaintext "
        "(behind an Envoy sidecar, or on loopback).",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        None,
        description="PEM CA that signs the mesh's certificates: verifies clients "
        "(server) and peers (client). None: the system roots for peers, no client auth.",
    )
    tls_require_client_auth: bool = Field(
        True,
        description="With TLS on: refuse clients without a certificate signed by "
        "tls_ca_file (mTLS). Needs tls_ca_file.",
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file are set together")
        if self.tls_cert_file is not None and self.tls_require_client_auth and not self.tls_ca_file:
            raise ValueError("tls_require_client_auth needs tls_ca_file")
        return self

    def tls_files(self) -> TlsFiles | None:
        """This service's TLS files, or None when it speaks plaintext."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return TlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_ca_file)
