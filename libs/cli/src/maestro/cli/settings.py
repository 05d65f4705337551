"""Settings of the API commands (environment prefix ``MAESTRO_CLI_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.runtime.context import Principal
from maestro.runtime.settings import default_address


class CliSettings(BaseSettings):
    """Where the API commands (``maestro workflows|run|executions|human-tasks``)
    send their gRPC calls, and as whom."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_CLI_", extra="ignore", frozen=True)

    registry_address: str = Field(
        default_address("registry"), description="host:port of the registry service."
    )
    compiler_address: str = Field(
        default_address("compiler"), description="host:port of the compiler service."
    )
    scheduler_address: str = Field(
        default_address("scheduler"), description="host:port of the scheduler service."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of each call.")
    tenant: str = Field("default", description="Tenant the commands act in.")
    subject: str = Field("local-admin", description="Subject the commands act as.")
    roles: tuple[str, ...] = Field(("admin",), description="Roles of the subject.")

    def principal(self) -> Principal:
        """The identity sent as ``x-maestro-*`` metadata (as the gateway does
        until JWT authentication lands)."""
        return Principal(tenant=self.tenant, subject=self.subject, roles=self.roles)
