"""Settings of the gateway (environment prefix ``MAESTRO_GATEWAY_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GATEWAY_PORT, GRPC_SERVICES, default_address


class GatewaySettings(BaseSettings):
    """Settings of the REST/GraphQL gateway."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_GATEWAY_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(DEFAULT_GATEWAY_PORT, ge=0, le=65535, description="HTTP port; 0 picks one.")
    log_level: str = Field("INFO", description="Root log level.")
    log_format: Literal["json", "text"] = Field("json", description="Log line format.")
    trace_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="Where finished spans go."
    )
    otlp_endpoint: str = Field("127.0.0.1:4317", description="OTLP/gRPC collector address.")
    client_timeout_seconds: float = Field(5.0, gt=0, description="Deadline of backend calls.")
    readiness_interval_seconds: float = Field(
        2.0, gt=0, description="How often backend health is polled for /readyz."
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="Largest request body accepted, in bytes; larger bodies get 413 "
        "(Content-Length is checked before reading, the stream while reading).",
    )
    sse_keepalive_seconds: float = Field(
        15.0,
        gt=0,
        description="While an event stream (SSE) is idle, a `: keep-alive` comment is "
        "sent this often, so proxies do not close it.",
    )
    default_tenant: str = Field(
        "default",
        description="Tenant of requests without an x-maestro-tenant header (until JWT "
        "authentication replaces header identity).",
    )
    default_subject: str = Field(
        "local-admin", description="Subject of requests without an x-maestro-subject header."
    )
    default_roles: tuple[str, ...] = Field(
        ("admin",),
        description="Roles of requests without an x-maestro-roles header.",
    )
    compiler_address: str = Field(default_address("compiler"), description="Compiler gRPC.")
    registry_address: str = Field(default_address("registry"), description="Registry gRPC.")
    scheduler_address: str = Field(default_address("scheduler"), description="Scheduler gRPC.")
    executor_address: str = Field(default_address("executor"), description="Executor gRPC.")
    policy_address: str = Field(default_address("policy"), description="Policy gRPC.")
    signer_address: str = Field(default_address("signer"), description="Signer gRPC.")

    def backend_addresses(self) -> dict[str, str]:
        """The gRPC address of every backend service, by service name."""
        return {svc: getattr(self, f"{svc}_address") for svc in GRPC_SERVICES}
