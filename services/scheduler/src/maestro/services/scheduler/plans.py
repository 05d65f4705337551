"""Published plans as the scheduler runs them.

A version is resolved through the registry (``GetWorkflowVersion``), and its
compiled plan and definition are kept in the scheduler's ``plans`` table keyed by
definition digest, so executions keep running when the registry is down and a
plan is parsed once per process. Exact versions are immutable and cached for
good; aliases (and "latest") are re-resolved after ``alias_cache_seconds``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import semver
from google.protobuf import json_format
from sqlalchemy.engine import Connection

from maestro.common.v1 import plan_pb2, workflow_pb2
from maestro.registry.v1 import registry_service_pb2
from maestro.runtime.clients import RegistryClient
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.services.scheduler.store import Store

StepType = workflow_pb2.StepType
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int = 1
    initial_backoff_s: float = 1.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.0
    non_retryable_errors: frozenset[str] = frozenset()

    def backoff(self, failed_attempts: int, rand: float) -> float:
        """Seconds before the next attempt after ``failed_attempts`` failures."""
        delay = self.initial_backoff_s * self.multiplier ** max(0, failed_attempts - 1)
        delay = min(delay, self.max_backoff_s)
        if self.jitter:
            delay *= 1 + self.jitter * (2 * rand - 1)
        return max(0.0, delay)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a plan, in plain Python values."""

    id: str
    type: int
    needs: tuple[str, ...]
    order: int
    handler: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    retry: Retry = Retry()
    task_queue: str = "default"
    compensate: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    condition: str = ""
    then_steps: tuple[str, ...] = ()
    else_steps: tuple[str, ...] = ()
    loop_items: str = ""
    loop_parallelism: int = 10
    body: StepSpec | None = None
    assignees: tuple[str, ...] = ()
    form_schema: Mapping[str, Any] = field(default_factory=dict)
    due_s: float = 0.0
    instructions: str = ""
    delay_s: float = 0.0
    delay_until: str = ""
    subworkflow: str = ""
    subworkflow_version: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled plan ready to interpret."""

    digest: str
    workflow_labels: Mapping[str, str]
    steps: Mapping[str, StepSpec]
    order: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]
    outputs: Mapping[str, str]
    input_schema: Mapping[str, Any]
    validator: Any
    config_digests: Mapping[str, str] = field(default_factory=dict)
    """PlannedStep.config_digest by step id (loop iterations use their loop's)."""

    def validate_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Raises INVALID_ARGUMENT/INPUT_SCHEMA_VIOLATION listing every problem."""
        errors = sorted(self.validator.iter_errors(dict(inputs)), key=lambda e: list(e.path))
        if errors:
            violations = [
                FieldViolation("inputs" + "".join(f".{p}" for p in e.path), e.message)
                for e in errors[:20]
            ]
            raise InvalidArgumentError(
                f"inputs do not satisfy the workflow's input schema: {errors[0].message}",
                reason="INPUT_SCHEMA_VIOLATION",
                field_violations=violations,
            )


def _seconds(duration: Any, default: float) -> float:
    seconds = duration.seconds + duration.nanos / 1e9
    return seconds if seconds > 0 else default


def _struct(value: Any) -> dict[str, Any]:
    return json_format.MessageToDict(value) if value.ListFields() else {}


def step_spec(step: workflow_pb2.Step, order: int) -> StepSpec:
    """The plain form of one planned step (also used for loop bodies)."""
    retry = Retry()
    if step.HasField("retry"):
        r = step.retry
        retry = Retry(
            max_attempts=r.max_attempts,
            initial_backoff_s=_seconds(r.initial_backoff, 1.0),
            multiplier=r.multiplier or 2.0,
            max_backoff_s=_seconds(r.max_backoff, 60.0),
            jitter=r.jitter,
            non_retryable_errors=frozenset(r.non_retryable_errors),
        )
    body = None
    if step.type == StepType.STEP_TYPE_LOOP and step.loop.HasField("body"):
        body = step_spec(step.loop.body, order)
    return StepSpec(
        id=step.id,
        type=step.type,
        needs=tuple(step.needs),
        order=order,
        handler=step.handler,
        config=_struct(step.config),
        input=dict(step.input),
        timeout_s=_seconds(step.timeout, DEFAULT_TIMEOUT_S),
        retry=retry,
        task_queue=step.task_queue or "default",
        compensate=step.compensate,
        labels=dict(step.labels),
        condition=step.condition.expression,
        then_steps=tuple(step.condition.then_steps),
        else_steps=tuple(step.condition.else_steps),
        loop_items=step.loop.items,
        loop_parallelism=step.loop.parallelism or 10,
        body=body,
        assignees=tuple(step.human.assignees),
        form_schema=_struct(step.human.form_schema),
        due_s=_seconds(step.human.due, 0.0),
        instructions=step.human.instructions,
        delay_s=_seconds(step.delay.duration, 0.0),
        delay_until=step.delay.until,
        subworkflow=step.subworkflow.workflow,
        subworkflow_version=step.subworkflow.version,
    )


def build_plan(plan: plan_pb2.CompiledPlan, definition: workflow_pb2.WorkflowDefinition) -> Plan:
    steps = {p.step.id: step_spec(p.step, p.order) for p in plan.steps}
    schema = _struct(definition.input_schema) or {"type": "object"}
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    return Plan(
        digest=plan.definition_digest,
        workflow_labels=dict(definition.labels),
        steps=steps,
        order=tuple(p.step.id for p in sorted(plan.steps, key=lambda p: p.order)),
        dependents={p.step.id: tuple(p.dependents) for p in plan.steps},
        outputs=dict(definition.outputs),
        input_schema=schema,
        validator=validator_class(schema, format_checker=jsonschema.FormatChecker()),
        config_digests={p.step.id: p.config_digest for p in plan.steps},
    )


@dataclass(frozen=True, slots=True)
class Resolved:
    """A version resolved for StartExecution."""

    workflow_id: str
    version: str
    alias: str
    plan: Plan


class Plans:
    """Resolves versions through the registry and caches parsed plans."""

    def __init__(self, store: Store, registry: RegistryClient, alias_ttl: float) -> None:
        self._store = store
        self._registry = registry
        self._alias_ttl = alias_ttl
        self._plans: dict[str, Plan] = {}
        self._versions: dict[tuple[str, str, str], tuple[float, str, str]] = {}
        self._lock = asyncio.Lock()

    async def resolve(self, tenant: str, workflow_id: str, version: str) -> Resolved:
        """The version (or alias, or latest when empty) to run.

        Raises the registry's NOT_FOUND errors (WORKFLOW_NOT_FOUND,
        VERSION_NOT_FOUND) unchanged.
        """
        requested = version or "latest"
        exact = _is_semver(requested)
        key = (tenant, workflow_id, requested)
        cached = self._versions.get(key)
        if cached is not None and (exact or time.monotonic() - cached[0] < self._alias_ttl):
            _, semver, digest = cached
            plan = self._plans.get(digest) or await self.by_digest(digest)
            if plan is not None:
                return Resolved(workflow_id, semver, "" if exact or not version else version, plan)
        response = await self._registry.get_workflow_version(
            registry_service_pb2.GetWorkflowVersionRequest(
                name=f"workflows/{workflow_id}/versions/{requested}"
            )
        )
        published = response.version
        digest = published.plan.definition_digest or published.digest
        plan = self._plans.get(digest)
        if plan is None:
            await self._store.put_plan(
                digest,
                published.plan.SerializeToString(deterministic=True),
                published.definition.SerializeToString(deterministic=True),
            )
            plan = build_plan(published.plan, published.definition)
            self._plans[digest] = plan
        self._versions[key] = (time.monotonic(), published.version, digest)
        alias = "" if exact or not version else version
        return Resolved(workflow_id, published.version, alias, plan)

    async def by_digest(self, digest: str) -> Plan | None:
        """The plan of an execution (from memory, else the scheduler's table)."""
        plan = self._plans.get(digest)
        if plan is not None:
            return plan
        return self._parse(digest, await self._store.get_plan(digest))

    def by_digest_in(self, conn: Connection, digest: str) -> Plan | None:
        """:meth:`by_digest` inside a write transaction (on its thread)."""
        plan = self._plans.get(digest)
        if plan is not None:
            return plan
        return self._parse(digest, self._store.plan_row(conn, digest))

    def _parse(self, digest: str, stored: tuple[bytes, bytes] | None) -> Plan | None:
        if stored is None:
            return None
        compiled = plan_pb2.CompiledPlan.FromString(stored[0])
        definition = workflow_pb2.WorkflowDefinition.FromString(stored[1])
        plan = build_plan(compiled, definition)
        self._plans[digest] = plan
        return plan


def _is_semver(text: str) -> bool:
    """An exact version (immutable, cached for good), not an alias."""
    return bool(semver.Version.is_valid(text))
