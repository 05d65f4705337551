"""Execution receipts: the scheduler's side of the runtime's receipt relay.

Every finish of an execution (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT,
COMPENSATED; children too) writes one ``pending_receipts`` row in the
finishing transaction (``Store.flush``), keyed by the finish's terminal event:
``executions/{id}/finish/{sequence}``. Nothing else happens on that path.
:class:`ExecutionReceipts` is the :class:`~maestro.runtime.receipts.ReceiptOutbox`
the relay drains: it builds each statement from the scheduler's own tables
when the relay asks (``pending_receipts``) and records the signed receipt on
the execution (``record_receipt``).

Rules:

- **Superseded finishes are not signed.** A retry or compensation takes a
  finished execution into a new run, whose finish gets its own receipt; a
  pending receipt of the old finish is dropped unsigned (and logged). A receipt
  signed just before the execution moved on stays in the signer's log but is
  not shown on the execution.
- **The version receipt link.** ``version_receipt`` is the registry's
  ``WorkflowVersion.receipt``, which the registry may fill a moment after the
  publish. While it is empty, a finish stays pending for at most
  ``version_receipt_wait`` seconds after it happened, then is signed without
  the link (logged), so a registry that cannot sign, or cannot be reached,
  delays receipts boundedly and never blocks them. Non-empty receipts are
  cached per version for good (they never change).
- **Determinism.** A statement is a function of the finish: the policy
  decisions taken after it (for example an idempotent repeat of a cancel) are
  left out, and it is serialized with RFC 8785, so building it again after a
  crash gives the same bytes (and the signer's request id, derived from the
  key, the same receipt).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from maestro.registry.v1 import registry_service_pb2
from maestro.runtime import context, provenance
from maestro.runtime.clients import RegistryClient
from maestro.runtime.errors import MaestroError
from maestro.runtime.policy import principal_message
from maestro.runtime.receipts import PendingReceipt
from maestro.runtime.timestamps import timestamp
from maestro.scheduler.v1 import execution_pb2
from maestro.services.scheduler.plans import Plan, Plans
from maestro.services.scheduler.store import (
    AttemptBrief,
    FinishRecord,
    PendingFinish,
    StepRow,
    Store,
    dumps,
    loads,
    now,
)
from maestro.signer.v1 import receipt_pb2

log = logging.getLogger(__name__)
X = execution_pb2.ExecutionState
S = execution_pb2.StepState
TASK = 1
_TERMINAL = frozenset(
    {X.EXECUTION_STATE_SUCCEEDED, X.EXECUTION_STATE_FAILED, X.EXECUTION_STATE_CANCELLED,
     X.EXECUTION_STATE_TIMED_OUT, X.EXECUTION_STATE_COMPENSATED}
)  # fmt: skip
_FAILED = frozenset(
    {X.EXECUTION_STATE_FAILED, X.EXECUTION_STATE_CANCELLED, X.EXECUTION_STATE_TIMED_OUT}
)
_FAILED_STEP = frozenset({S.STEP_STATE_FAILED, S.STEP_STATE_TIMED_OUT, S.STEP_STATE_CANCELLED})
_PRINCIPAL_FIELDS = ("subject", "roles", "clearance", "purpose", "legal_basis", "reason_for_access")
_NEGATIVE_TTL = 1.0
"""Seconds an empty version receipt is believed before the registry is asked again."""


def principal_json(principal: context.Principal) -> str:
    """What ``executions.started_by`` keeps of the starting principal (the
    tenant is the execution's own); empty fields are left out."""
    kept = {name: getattr(principal, name) for name in _PRINCIPAL_FIELDS}
    return dumps({k: list(v) if k == "roles" else v for k, v in kept.items() if v})


def started_by(tenant: str, creator: str, stored: str) -> context.Principal:
    """The starting principal of an execution, from ``executions.started_by``
    (executions started before it existed name their tenant and subject only)."""
    kept: dict[str, Any] = loads(stored) if stored else {}
    return context.Principal(
        tenant=tenant,
        subject=str(kept.get("subject") or creator),
        roles=tuple(kept.get("roles", ())),
        clearance=str(kept.get("clearance", "")),
        purpose=str(kept.get("purpose", "")),
        legal_basis=str(kept.get("legal_basis", "")),
        reason_for_access=str(kept.get("reason_for_access", "")),
    )


def digest(value: Any) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 JSON of ``value``."""
    return provenance.sha256_hex(provenance.canonical_json(value))


def receipt_key(execution_id: str, finish_sequence: int) -> str:
    """The outbox key of a finish (the signing request id derives from it)."""
    return f"executions/{execution_id}/finish/{finish_sequence}"


def parse_receipt_key(key: str) -> tuple[str, int]:
    prefix, execution_id, finish, sequence = key.split("/")
    if prefix != "executions" or finish != "finish":
        raise ValueError(f"not an execution receipt key: {key!r}")
    return execution_id, int(sequence)


def _error_code(text: str | None) -> str:
    error = loads(text)
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _state_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def execution_predicate(
    record: FinishRecord, finish_sequence: int, plan: Plan | None, version_receipt: str
) -> receipt_pb2.ExecutionPredicate:
    """The ExecutionPredicate of one finish (see the proto for each field)."""
    execution = record.execution
    decisions = [
        (str(d[1]), str(d[2]))
        for d in (loads(execution.policy_decisions) if execution.policy_decisions else [])
        if int(d[0]) < finish_sequence
    ]
    by_step: dict[str, list[str]] = {}
    for decision_id, step_id in decisions:
        if step_id:
            by_step.setdefault(step_id, []).append(decision_id)
    attempts: dict[str, list[AttemptBrief]] = {}
    for attempt in sorted(record.attempts, key=lambda a: a.attempt):
        attempts.setdefault(attempt.step_id, []).append(attempt)
    rank = {step_id: i for i, step_id in enumerate(plan.order)} if plan is not None else {}
    far = datetime.max.replace(tzinfo=UTC)

    def start_order(step: StepRow) -> tuple[datetime, int, int, str]:
        reached = step.start_time or step.end_time or far
        return (
            reached,
            rank.get(step.parent_step or step.step_id, len(rank)),
            step.loop_index,
            step.step_id,
        )

    outputs = loads(execution.outputs) if execution.outputs else {}
    predicate = receipt_pb2.ExecutionPredicate(
        execution=f"executions/{execution.execution_id}",
        workflow_version=f"workflows/{execution.workflow_id}/versions/{execution.version}",
        definition_digest=execution.definition_digest,
        version_receipt=version_receipt,
        parent_execution=(
            f"executions/{execution.parent_execution_id}" if execution.parent_execution_id else ""
        ),
        started_by=principal_message(
            started_by(execution.tenant, execution.creator, execution.started_by)
        ),
        trigger="subworkflow" if execution.parent_execution_id else "api",
        inputs_digest=digest(loads(execution.inputs)),
        outputs_digest=digest(outputs),
        state=_state_name(X, execution.state, "EXECUTION_STATE_"),
        error_code=_error_code(execution.error) if execution.state in _FAILED else "",
        steps=[
            _step_result(step, plan, attempts.get(step.step_id, ()), by_step.get(step.step_id, ()))
            for step in sorted(record.steps, key=start_order)
        ],
        policy_decision_ids=[decision_id for decision_id, _ in decisions],
        cache_hits=0,  # step result caching is not applied yet: steps always run
        create_time=timestamp(execution.create_time),
        start_time=timestamp(execution.start_time),
        end_time=timestamp(execution.end_time),
    )
    return predicate


def _step_result(
    step: StepRow,
    plan: Plan | None,
    attempts: Sequence[AttemptBrief],
    decision_ids: Sequence[str],
) -> receipt_pb2.StepResult:
    top = step.parent_step or step.step_id
    spec = None
    if plan is not None and top in plan.steps:
        spec = plan.steps[top].body if step.parent_step else plan.steps[top]
    error_code = _error_code(step.error)
    if not error_code and step.state in _FAILED_STEP and attempts:
        error_code = _error_code(attempts[-1].error)
    if step.type == TASK:
        started = next((a.start_time for a in attempts if a.start_time is not None), None)
    else:
        started = step.start_time
    return receipt_pb2.StepResult(
        step_id=step.step_id,
        handler=spec.handler if spec is not None and step.type == TASK else "",
        config_digest=plan.config_digests.get(top, "") if plan is not None else "",
        input_digest=digest(loads(step.input)) if step.input is not None else "",
        output_digest=digest(loads(step.output)) if step.output is not None else "",
        state=_state_name(S, step.state, "STEP_STATE_"),
        attempts=step.attempt_count,
        cache_hit=False,
        policy_decision_ids=list(decision_ids),
        error_code=error_code,
        start_time=timestamp(started),
        end_time=timestamp(step.end_time),
    )


def execution_statement(predicate: receipt_pb2.ExecutionPredicate) -> bytes:
    """The in-toto Statement v1 of an EXECUTION receipt, as RFC 8785 bytes."""
    statement = {
        "_type": provenance.STATEMENT_TYPE,
        "subject": [{"name": predicate.execution, "digest": {"sha256": predicate.outputs_digest}}],
        "predicateType": provenance.EXECUTION_PREDICATE_TYPE,
        "predicate": json_format.MessageToDict(predicate),
    }
    return provenance.canonical_json(statement)


class ExecutionReceipts:
    """The scheduler's receipt outbox (``maestro.runtime.receipts.ReceiptOutbox``);
    see the module docstring.

    Args:
        store: the scheduler's store (``pending_receipts`` and the journal).
        plans: the plans executions ran (step handlers and config digests).
        registry: asked for ``WorkflowVersion.receipt``.
        version_receipt_wait: seconds a finish waits for its version's receipt.
        cache_size: versions whose receipt is remembered.
    """

    def __init__(
        self,
        store: Store,
        plans: Plans,
        registry: RegistryClient,
        *,
        version_receipt_wait: float,
        cache_size: int = 4096,
    ) -> None:
        self._store = store
        self._plans = plans
        self._registry = registry
        self._wait = timedelta(seconds=version_receipt_wait)
        self._cache_size = cache_size
        self._version_receipts: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._empty_until: dict[tuple[str, str, str], float] = {}

    async def pending_receipts(self, limit: int) -> list[PendingReceipt]:
        """Up to ``limit`` receipts ready to sign, oldest finish first: holds
        back those still waiting for their version's receipt (a light read of
        the outbox and the executions' versions) and drops superseded ones."""
        at = time.monotonic()
        for key in [k for k, until in self._empty_until.items() if until <= at]:
            del self._empty_until[key]
        ready: list[PendingReceipt] = []
        after: tuple[datetime, str, int] | None = None
        while len(ready) < limit:
            page = await self._store.pending_finishes(limit, after)
            if not page:
                break
            after = page[-1].position
            linked = await self._linked(page)
            records = await self._store.finish_records([f.execution_id for f, _ in linked])
            for finish, version_receipt in linked:
                pending = await self._statement(
                    records.get(finish.execution_id), finish, version_receipt
                )
                if pending is not None:
                    ready.append(pending)
            if len(page) < limit:
                break
        return ready[:limit]

    async def _linked(self, page: Sequence[PendingFinish]) -> list[tuple[PendingFinish, str]]:
        """The finishes of ``page`` that are ready, with the version receipt
        each is signed with ("" for none)."""
        versions = await self._store.execution_versions([f.execution_id for f in page])
        linked: list[tuple[PendingFinish, str]] = []
        for finish in page:
            version = versions.get(finish.execution_id)
            if finish.without_version_receipt or version is None:
                linked.append((finish, ""))
                continue
            version_receipt = await self.version_receipt(*version)
            if not version_receipt:
                if now() - finish.create_time < self._wait:
                    continue  # the registry may sign the version in a moment
                await self._store.waive_version_receipt(finish.execution_id, finish.finish_sequence)
                log.warning(
                    "signing an execution receipt without its version's receipt (none after %ss)",
                    self._wait.total_seconds(),
                    extra={
                        "key": receipt_key(finish.execution_id, finish.finish_sequence),
                        "version": f"workflows/{version[1]}/versions/{version[2]}",
                    },
                )
            linked.append((finish, version_receipt))
        return linked

    async def _statement(
        self, record: FinishRecord | None, finish: PendingFinish, version_receipt: str
    ) -> PendingReceipt | None:
        execution_id, sequence = finish.execution_id, finish.finish_sequence
        key = receipt_key(execution_id, sequence)
        if (
            record is None
            or record.moved_sequence > sequence
            or record.execution.state not in _TERMINAL
        ):
            await self._store.drop_pending_receipt(execution_id, sequence)
            log.info(
                "finish superseded before its receipt was signed; the next finish gets its own",
                extra={"key": key, "execution_id": execution_id},
            )
            return None
        execution = record.execution
        plan = await self._plans.by_digest(execution.definition_digest)
        predicate = execution_predicate(record, sequence, plan, version_receipt)
        return PendingReceipt(
            key=key,
            tenant=execution.tenant,
            kind=receipt_pb2.RECEIPT_KIND_EXECUTION,
            subject=predicate.execution,
            statement=execution_statement(predicate),
        )

    async def version_receipt(self, tenant: str, workflow_id: str, version: str) -> str:
        """``WorkflowVersion.receipt`` of a version; "" while it has none or
        the registry cannot say (logged)."""
        key = (tenant, workflow_id, version)
        cached = self._version_receipts.get(key)
        if cached:
            self._version_receipts.move_to_end(key)
            return cached
        if self._empty_until.get(key, 0.0) > time.monotonic():
            return ""
        name = f"workflows/{workflow_id}/versions/{version}"
        call = context.CallContext(
            request_id=context.new_request_id(),
            principal=context.Principal(tenant=tenant, subject="system:scheduler"),
            caller_service="scheduler",
        )
        try:
            with context.bind(call):
                response = await self._registry.get_workflow_version(
                    registry_service_pb2.GetWorkflowVersionRequest(name=name)
                )
        except MaestroError as exc:
            log.warning("could not read the receipt of %s: %s", name, exc)
            receipt = ""
        else:
            receipt = response.version.receipt
        if not receipt:
            self._empty_until[key] = time.monotonic() + _NEGATIVE_TTL
            return ""
        self._empty_until.pop(key, None)
        self._version_receipts[key] = receipt
        if len(self._version_receipts) > self._cache_size:
            self._version_receipts.popitem(last=False)
        return receipt

    async def record_receipt(self, pending: PendingReceipt, receipt: str) -> None:
        """Shows ``receipt`` on the execution if it is still in that finish,
        and drops the pending receipt; idempotent."""
        execution_id, sequence = parse_receipt_key(pending.key)
        outcome = await self._store.record_receipt(execution_id, sequence, receipt)
        if outcome == "superseded":
            log.info(
                "receipt signed for a finish a retry or compensation superseded; "
                "it stays in the signer's log, not on the execution",
                extra={"key": pending.key, "receipt": receipt},
            )
