"""JSON request bodies of the REST API.

Strict and closed: a field of the wrong JSON type or an unknown field is a 400
with one violation per problem, never silently coerced or ignored. Field names
are camelCase, as in the responses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RequestBody(BaseModel):
    """Base of every JSON request body."""

    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=False, frozen=True
    )


class PublishBody(RequestBody):
    """``POST /api/workflows/{id}/publish``."""

    bump: Literal["patch", "minor", "major"] | None = Field(
        None, description="Semver bump; absent picks the smallest bump the diff allows."
    )
    version: str = Field("", description="Explicit version instead of a bump, e.g. `2.0.0`.")
    changelog: str = Field("", description="Release notes.")


class CloneBody(RequestBody):
    """``POST /api/workflows/{id}/clone``."""

    version: str = Field("", description="Version (semver or alias) to clone; empty: the draft.")
    workflow_id: str = Field("", description="Id of the new workflow; empty: assigned.")
    name: str = Field(
        "", description="Definition name of the copy; empty: the source's with `-copy`."
    )


class PromoteBody(RequestBody):
    """``POST /api/workflows/{id}/promote``."""

    alias: str = Field(description="Alias to point, e.g. `stable`.", min_length=1)
    version: str = Field(description="Published version (semver) it points at.", min_length=1)


class FreezeBody(RequestBody):
    """``POST /api/workflows/{id}/freeze``."""

    frozen: bool = Field(True, description="True freezes (publishing refused); false unfreezes.")
    reason: str = Field("", description="Why; recorded on the workflow.")


class StepMockBody(RequestBody):
    """A mocked step result for simulation (``maestro.compiler.v1.StepMock``)."""

    output: dict[str, Any] | None = Field(None, description="Output the step produces.")
    fail: bool = Field(False, description="Every attempt fails.")
    error_code: str = Field("", description="Error code when `fail` is set.")
    duration: str | None = Field(None, description="Per-attempt duration in seconds, e.g. `1.5s`.")
    failures_before_success: int = Field(0, ge=0, description="Failing attempts before success.")


class SimulateBody(RequestBody):
    """``POST /api/workflows/simulate``."""

    definition: dict[str, Any] | str = Field(
        description="The definition: a JSON document object, or YAML/JSON text."
    )
    inputs: dict[str, Any] = Field(default_factory=dict, description="Execution inputs.")
    mocks: dict[str, StepMockBody] = Field(
        default_factory=dict, description="Mocked results by step id."
    )
    cost_table: dict[str, float] = Field(
        default_factory=dict,
        description="Cost per attempt in US cents by step type or handler name.",
    )
    default_task_duration: str | None = Field(
        None,
        description="Duration of an unmocked task attempt in seconds, e.g. `0.25s`; "
        "default 100 ms.",
    )


class CreateFromTemplateBody(RequestBody):
    """``POST /api/workflow-templates/{id}/create``."""

    name: str = Field("", description="Definition name of the new workflow.")
    workflow_id: str = Field("", description="Id of the new workflow; empty: assigned.")


class BuildBody(RequestBody):
    """``POST /api/workflow-builder``."""

    pattern: Literal["routing", "rag", "etl", "approval"] = Field(
        description="The pattern to build."
    )
    name: str = Field(description="Definition name.", min_length=1)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description='Pattern parameters, e.g. `{"routes": ["a", "b"]}` for routing.',
    )


class ExecuteBody(RequestBody):
    """``POST /api/workflows/{id}/execute``."""

    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Execution inputs; must satisfy the input schema."
    )
    version: str = Field(
        "", description="Published version (`1.0.0`) or alias (`stable`); empty: the latest."
    )
    correlation_id: str = Field(
        "", max_length=128, description="Caller's id tying the run to an outside transaction."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="User labels (at most 64).")
    timeout: str | None = Field(
        None, description="Overall deadline from the start, e.g. `30s`; absent: none."
    )


class ReasonBody(RequestBody):
    """``POST /api/executions/{id}/cancel`` and ``/compensate``."""

    reason: str = Field("", max_length=1024, description="Why; recorded in the journal.")


class CompleteHumanTaskBody(RequestBody):
    """``POST /api/human-tasks/{id}/complete``."""

    result: dict[str, Any] = Field(
        default_factory=dict, description="The submitted form; must satisfy `formSchema`."
    )


class Problem(BaseModel):
    """An RFC 9457 problem: every error of the API, with the same ``reason`` as
    the gRPC ``ErrorInfo``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI of the problem type.")
    title: str
    status: int = Field(description="HTTP status.")
    detail: str = Field(description="Human-readable explanation.")
    reason: str = Field(description="UPPER_SNAKE reason, e.g. `WORKFLOW_NOT_FOUND`.")
    code: str = Field(description="Canonical gRPC code name, e.g. `NOT_FOUND`.")
    domain: str = Field(description="Error domain, `maestro.dev`.")
    instance: str | None = Field(None, description="The request path.")
    request_id: str | None = Field(None, alias="requestId", description="The x-request-id.")
    metadata: dict[str, str] | None = Field(None, description="ErrorInfo metadata.")
    violations: list[dict[str, str]] | None = Field(
        None,
        description="Bad fields: `field` (request path or JSON Pointer into the "
        "definition), `description`, `reason` (e.g. a diagnostic code).",
    )
    reasons: list[dict[str, str]] | None = Field(
        None,
        description="`POLICY_DENIED`: why, each `{code, message}` (e.g. `ROLE_REQUIRED`).",
    )
    decision_id: str | None = Field(
        None,
        alias="decisionId",
        description="`POLICY_DENIED`: the id of the logged policy decision.",
    )
    appeal: dict[str, Any] | None = Field(
        None,
        description="`POLICY_DENIED`: how to appeal (`path`, `grantableByRoles`, "
        "`grantableBySubjects`, `instructions`).",
    )
