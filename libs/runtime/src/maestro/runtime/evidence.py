"""An execution's evidence bundle: the one place that turns an execution into
the ``.tar.gz`` an auditor verifies offline (``maestro verify``). The gateway's
``GET /api/executions/{id}/evidence`` and ``maestro executions evidence`` both
call :func:`execution_evidence`.

The bundle starts from the execution's receipt (``Execution.receipt``, signed
by the scheduler after the execution finished) and follows it to the receipt
of the published version that ran (``include_linked``), so it proves what ran
and what it did, under one signed checkpoint.
"""

from __future__ import annotations

from maestro.runtime.clients import SchedulerClient, SignerClient
from maestro.runtime.cloudevents import TERMINAL_STATES
from maestro.runtime.errors import FailedPreconditionError
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.signer.v1 import signer_service_pb2 as signer_pb

MEDIA_TYPE = "application/gzip"
SIGNING_RETRY_SECONDS = 2.0
"""Retry-After for a finished execution whose receipt is being signed."""


def receipt_pending(execution: execution_pb2.Execution) -> FailedPreconditionError:
    """The typed error for an execution without a receipt (yet)."""
    state = execution_pb2.ExecutionState.Name(execution.state).removeprefix("EXECUTION_STATE_")
    finished = execution.state in TERMINAL_STATES
    message = (
        f"{execution.name} finished ({state}) and its receipt is being signed; retry shortly"
        if finished
        else f"{execution.name} is {state}: its evidence exists once it has finished"
    )
    return FailedPreconditionError(
        message,
        reason="RECEIPT_PENDING",
        metadata={"name": execution.name, "state": state},
        retry_after_seconds=SIGNING_RETRY_SECONDS if finished else None,
    )


async def execution_evidence(
    scheduler: SchedulerClient, signer: SignerClient, execution: str
) -> signer_pb.ExportEvidenceBundleResponse:
    """The evidence bundle of ``execution`` (``executions/{id}``), as the
    caller of the current context (its tenant and policy apply on both calls).

    Raises:
        FailedPreconditionError: RECEIPT_PENDING (see :func:`receipt_pending`).
        MaestroError: whatever GetExecution or ExportEvidenceBundle return
            (EXECUTION_NOT_FOUND, POLICY_DENIED, VERIFICATION_FAILED, ...).
    """
    reply = await scheduler.get_execution(
        scheduler_pb.GetExecutionRequest(name=execution, view=execution_pb2.EXECUTION_VIEW_BASIC)
    )
    if not reply.execution.receipt:
        raise receipt_pending(reply.execution)
    return await signer.export_evidence_bundle(
        signer_pb.ExportEvidenceBundleRequest(
            receipts=[reply.execution.receipt], include_linked=True
        )
    )
