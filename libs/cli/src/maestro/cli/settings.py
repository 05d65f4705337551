"""Settings of the API commands (environment prefix ``MAESTRO_CLI_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from maestro.runtime.context import LOCAL_ADMIN, Principal
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
    signer_address: str = Field(
        default_address("signer"), description="host:port of the signer service."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of each call.")
    tenant: str = Field(LOCAL_ADMIN.tenant, description="Tenant the commands act in.")
    subject: str = Field(LOCAL_ADMIN.subject, description="Subject the commands act as.")
    roles: tuple[str, ...] = Field(LOCAL_ADMIN.roles, description="Roles of the subject.")
    clearance: str = Field(LOCAL_ADMIN.clearance, description="Clearance of the subject.")
    purpose: str = Field(LOCAL_ADMIN.purpose, description="Declared purpose of the access.")
    legal_basis: str = Field(LOCAL_ADMIN.legal_basis, description="Legal basis of the access.")
    reason_for_access: str = Field(
        LOCAL_ADMIN.reason_for_access, description="Reason for access (sensitive reads)."
    )

    def principal(self) -> Principal:
        """The identity sent as ``x-maestro-*`` metadata on direct gRPC calls
        (by default the embedded mesh's local admin; the policy service decides
        what it may do)."""
        return Principal(
            tenant=self.tenant,
            subject=self.subject,
            roles=self.roles,
            clearance=self.clearance,
            purpose=self.purpose,
            legal_basis=self.legal_basis,
            reason_for_access=self.reason_for_access,
        )
