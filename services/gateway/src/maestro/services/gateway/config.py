"""Settings of the gateway (environment prefix ``MAESTRO_GATEWAY_``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.runtime.settings import DEFAULT_GATEWAY_PORT, GRPC_SERVICES, default_address

JwtAlgorithm = Literal["EdDSA", "ES256", "RS256"]
"""Signature algorithms the gateway accepts (asymmetric only: no ``none``, no HMAC)."""


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
    data_dir: Path = Field(
        Path(".maestro"),
        description="Directory of the gateway's local state: the dev-mode JWT signing key "
        "`dev-jwt-key.pem` (which `maestro dev-token` writes). The default is `maestro "
        "up`'s default data dir.",
    )
    auth_mode: Literal["dev", "jwt"] = Field(
        "dev",
        description="How callers are authenticated. `dev`: a request without a token is the "
        "local admin (default_tenant/subject/roles, or its x-maestro-* headers), one with a "
        "token must carry a valid token signed by the dev key in data_dir (`maestro "
        "dev-token`). `jwt`: every API request needs a bearer JWT verified against "
        "jwks_url and/or jwt_keys_file; x-maestro-* identity headers are ignored.",
    )
    dev_auth_on_network: bool = Field(
        False,
        description="Allow auth_mode dev on an interface other than loopback. Dev mode lets "
        "a request without a token act as an admin of any tenant it names, so it is "
        "refused at start-up off loopback unless this is set (a closed test network only).",
    )
    jwt_issuer: str = Field(
        "", description="Required `iss` of tokens in jwt mode (required there)."
    )
    jwt_audience: str = Field(
        "maestro", description="Required `aud` of tokens (also of dev-mode tokens)."
    )
    jwks_url: str = Field(
        "",
        description="HTTP(S) URL of the issuer's JWKS (jwt mode). Cached for "
        "jwks_cache_seconds; a token with an unknown `kid` refetches it (at most once per "
        "jwks_min_refresh_seconds).",
    )
    jwt_keys_file: Path | None = Field(
        None,
        description="A local JWKS file of trusted verification keys (jwt mode), re-read "
        "when it changes; with jwks_url, keys of both are trusted.",
    )
    jwt_algorithms: tuple[JwtAlgorithm, ...] = Field(
        ("EdDSA", "ES256", "RS256"),
        min_length=1,
        description="Signature algorithms accepted (JSON list in the environment).",
    )
    jwt_leeway_seconds: float = Field(
        30.0, ge=0, description="Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds."
    )
    jwks_cache_seconds: float = Field(
        300.0, gt=0, description="How long a fetched JWKS is used before it is refetched."
    )
    jwks_min_refresh_seconds: float = Field(
        10.0,
        ge=0,
        description="Least time between two JWKS fetches caused by unknown `kid`s, so "
        "tokens with made-up key ids cannot hammer the issuer.",
    )
    default_tenant: str = Field(
        "default", description="Dev mode: tenant of requests without a token."
    )
    default_subject: str = Field(
        "local-admin", description="Dev mode: subject of requests without a token."
    )
    default_roles: tuple[str, ...] = Field(
        ("admin",), description="Dev mode: roles of requests without a token."
    )
    compiler_address: str = Field(default_address("compiler"), description="Compiler gRPC.")
    registry_address: str = Field(default_address("registry"), description="Registry gRPC.")
    scheduler_address: str = Field(default_address("scheduler"), description="Scheduler gRPC.")
    executor_address: str = Field(default_address("executor"), description="Executor gRPC.")
    policy_address: str = Field(default_address("policy"), description="Policy gRPC.")
    signer_address: str = Field(default_address("signer"), description="Signer gRPC.")

    @model_validator(mode="after")
    def _jwt_mode_complete(self) -> GatewaySettings:
        if self.auth_mode == "dev" and not _loopback(self.host) and not self.dev_auth_on_network:
            raise ValueError(
                f"auth_mode dev on {self.host}: a request without a token would act as an "
                "admin of any tenant; use auth_mode jwt, bind 127.0.0.1, or set "
                "dev_auth_on_network for a closed test network"
            )
        if self.auth_mode == "jwt":
            if not self.jwt_issuer or not self.jwt_audience:
                raise ValueError("auth_mode jwt needs jwt_issuer and jwt_audience")
            if not self.jwks_url and self.jwt_keys_file is None:
                raise ValueError("auth_mode jwt needs jwks_url and/or jwt_keys_file")
        if self.jwks_url and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be an http(s) URL")
        return self

    def backend_addresses(self) -> dict[str, str]:
        """The gRPC address of every backend service, by service name."""
        return {svc: getattr(self, f"{svc}_address") for svc in GRPC_SERVICES}


def _loopback(host: str) -> bool:
    """Whether ``host`` is a loopback interface (``localhost`` or 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
