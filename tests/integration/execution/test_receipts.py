"""Execution receipts on both backends: every finish of an execution gets a
signed EXECUTION receipt from the real signer, through the scheduler's durable
outbox, and the receipt attests what the execution's own view shows."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from sqlalchemy import text

from maestro.registry.v1 import registry_service_pb2 as rpb
from maestro.runtime import context, db, provenance
from maestro.runtime.clients import SignerClient, open_channel
from maestro.runtime.server import GrpcServer
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as spb
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.server import create_server as create_signer
from maestro.signer.v1 import receipt_pb2
from maestro.signer.v1 import signer_service_pb2 as sgpb
from tests.integration.execution.sink import Sink, running_sink
from tests.integration.execution.support import Backend, Mesh, execution_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
X = execution_pb2.ExecutionState
S = execution_pb2.StepState

# Receipts quickly in tests: the relay retries every 0.2 s, and a finish waits
# at most 1 s for its version's receipt before it is signed without it.
FAST_RECEIPTS: dict[str, Any] = {
    "receipt_interval_seconds": 0.2,
    "version_receipt_wait_seconds": 1.0,
}
STARTER = context.Principal(
    tenant="default",
    subject="olga@example.com",
    roles=("operator",),
    clearance="confidential",
    purpose="incident-response",
    legal_basis="contract",
    reason_for_access="INC-4711",
)
APPROVER = context.Principal(tenant="default", subject="ana@example.com", roles=("approver",))
AUDITOR = context.Principal(tenant="default", subject="audrey@example.com", roles=("auditor",))

RECEIPTED = """
name: receipted
inputSchema: {type: object, required: [who], properties: {who: {type: string}, n: {type: number}}}
outputs: {message: steps.greet.output.message, count: size(steps.each.output.results)}
steps:
  - {id: greet, type: task, handler: echo, timeout: 5s, input: {message: '"hello, " + inputs.who'}}
  - id: review
    type: human
    needs: [greet]
    human:
      assignees: ["role:approver"]
      instructions: Check the greeting
      formSchema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
  - id: each
    type: loop
    needs: [review]
    loop:
      items: "[1, 2]"
      body: {type: task, handler: echo, timeout: 5s, input: {n: item}}
"""


def flaky(url: str) -> str:
    """One HTTP step that fails its first call (HTTP_503, no retries left) and
    succeeds from the second on, so RetryExecution then succeeds."""
    return f"""
name: flaky
steps:
  - id: call
    type: task
    handler: http
    config: {{url: "{url}/flaky?failures=1", method: POST}}
    timeout: 5s
    retry: {{maxAttempts: 1}}
"""


def digest(value: Any) -> str:
    return provenance.sha256_hex(provenance.canonical_json(value))


def as_dict(struct: Any) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


@contextmanager
def acting_as(principal: context.Principal) -> Iterator[None]:
    with context.bind(context.CallContext(principal=principal)):
        yield


@asynccontextmanager
async def signer_client(server: GrpcServer) -> AsyncIterator[SignerClient]:
    address = f"127.0.0.1:{server.port}"
    channel = open_channel(address, caller="tests", services=SignerClient.SERVICES)
    try:
        yield SignerClient(channel, timeout=10, address=address)
    finally:
        await channel.close()


@pytest.fixture
async def mesh(backend: Backend, tmp_path: Path) -> AsyncIterator[Mesh]:
    async with execution_mesh(backend, tmp_path, **FAST_RECEIPTS) as running:
        yield running


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with running_sink() as running:
        yield running


async def wait_receipt(
    mesh: Mesh, name: str, *, other_than: str = "", timeout: float = 15.0
) -> execution_pb2.Execution:
    """The execution once it shows a receipt (other than ``other_than``)."""
    async with asyncio.timeout(timeout):
        while True:
            execution = await mesh.get(name)
            if execution.receipt and execution.receipt != other_than:
                return execution
            await asyncio.sleep(0.05)


async def read_receipt(
    signer: SignerClient, name: str
) -> tuple[receipt_pb2.Receipt, dict[str, Any], receipt_pb2.ExecutionPredicate]:
    """GetReceipt (which verifies signature and log inclusion on read) as an
    auditor of the executions' tenant; the receipt, statement and predicate."""
    with acting_as(AUDITOR):
        response = await signer.get_receipt(sgpb.GetReceiptRequest(name=name))
    receipt = response.receipt
    assert receipt.verified, receipt
    statement = json.loads(receipt.envelope.payload)
    predicate = json_format.ParseDict(statement["predicate"], receipt_pb2.ExecutionPredicate())
    return receipt, statement, predicate


async def receipts_of(signer: SignerClient, execution: str) -> list[receipt_pb2.Receipt]:
    with acting_as(AUDITOR):
        response = await signer.list_receipts(
            sgpb.ListReceiptsRequest(
                filter=f'kind = EXECUTION AND subject = "{execution}"', order_by="log_index asc"
            )
        )
    return list(response.receipts)


@asynccontextmanager
async def restarted_signer(mesh: Mesh, port: int) -> AsyncIterator[SignerClient]:
    """The mesh's signer started again on its old port and database."""
    signer = await create_signer(
        SignerSettings(
            port=port,
            metrics_port=None,
            data_dir=mesh.data_dir,
            policy_address=mesh.scheduler_options["policy_address"],
        )
    )
    try:
        async with signer_client(signer) as client:
            yield client
    finally:
        await signer.stop(0)


def pending_rows(mesh: Mesh, where: str = "") -> int:
    """Rows in the scheduler's receipt outbox (read straight from its database)."""
    url = db.database_url(mesh.backend.database_url, mesh.data_dir, "scheduler")
    engine = db.create_sync_engine(url)
    query = "SELECT count(*) FROM pending_receipts" + (f" WHERE {where}" if where else "")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


async def wait_pending_rows(mesh: Mesh, count: int, where: str = "") -> None:
    async with asyncio.timeout(10):
        while True:
            if pending_rows(mesh, where) == count:
                return
            await asyncio.sleep(0.1)


async def version_receipt(mesh: Mesh, workflow: str, version: str, *, wait: float) -> str:
    """The version's receipt, waiting up to ``wait`` seconds for the registry
    to sign it (it may do so a moment after the publish)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        found = await mesh.registry_client.get_workflow_version(
            rpb.GetWorkflowVersionRequest(name=f"{workflow}/versions/{version}")
        )
        if found.version.receipt or loop.time() > deadline:
            return found.version.receipt
        await asyncio.sleep(0.05)


async def config_digests(mesh: Mesh, workflow: str, version: str) -> Mapping[str, str]:
    found = await mesh.registry_client.get_workflow_version(
        rpb.GetWorkflowVersionRequest(name=f"{workflow}/versions/{version}")
    )
    return {p.step.id: p.config_digest for p in found.version.plan.steps}


async def test_a_succeeded_execution_gets_a_receipt_that_attests_its_run(mesh: Mesh) -> None:
    workflow = await mesh.publish(RECEIPTED, "receipted")
    with acting_as(STARTER):
        started = await mesh.start(workflow, {"who": "world", "n": 3})
    version_link = await version_receipt(mesh, workflow, started.version, wait=5.0)
    review = await mesh.wait_step(started.name, "review", S.STEP_STATE_WAITING)
    completion = spb.CompleteHumanTaskRequest(name=review.human_task, request_id=str(uuid.uuid4()))
    completion.result.update({"approved": True})
    with acting_as(APPROVER):
        await mesh.scheduler_client.complete_human_task(completion)
    finished = await mesh.wait(started.name)
    assert finished.state == X.EXECUTION_STATE_SUCCEEDED, finished
    execution = await wait_receipt(mesh, started.name)
    listed = await mesh.scheduler_client.list_executions(spb.ListExecutionsRequest())
    assert [e.receipt for e in listed.executions if e.name == execution.name] == [execution.receipt]

    async with signer_client(mesh.signer) as signer:
        receipt, statement, predicate = await read_receipt(signer, execution.receipt)
        # The log holds it: an inclusion proof from the typed client leads to
        # the root of the checkpoint it comes with, and the latest checkpoint
        # is consistent with that one.
        with acting_as(AUDITOR):
            proof = await signer.get_inclusion_proof(
                sgpb.GetInclusionProofRequest(log_index=receipt.log_index)
            )
            latest = (await signer.get_checkpoint()).checkpoint
            consistency = await signer.get_consistency_proof(
                sgpb.GetConsistencyProofRequest(first_size=proof.checkpoint.tree_size)
            )
    included = proof.inclusion_proof
    assert included.leaf_hash == receipt.leaf_hash
    provenance.verify_inclusion(
        included.leaf_index,
        included.tree_size,
        included.leaf_hash,
        list(included.hashes),
        proof.checkpoint.root_hash,
    )
    assert latest.tree_size >= proof.checkpoint.tree_size
    grown = consistency.consistency_proof
    assert grown.second_size == consistency.checkpoint.tree_size >= latest.tree_size
    provenance.verify_consistency(
        grown.first_size,
        grown.second_size,
        proof.checkpoint.root_hash,
        consistency.checkpoint.root_hash,
        list(grown.hashes),
    )
    assert receipt.kind == receipt_pb2.RECEIPT_KIND_EXECUTION
    assert receipt.subject == execution.name
    assert receipt.tenant == "default"
    assert statement["predicateType"] == provenance.EXECUTION_PREDICATE_TYPE
    outputs_digest = digest(as_dict(execution.outputs))
    assert statement["subject"] == [{"name": execution.name, "digest": {"sha256": outputs_digest}}]

    assert predicate.execution == execution.name
    assert predicate.workflow_version == f"{workflow}/versions/{execution.version}"
    assert predicate.definition_digest == execution.definition_digest
    assert predicate.version_receipt == version_link
    assert predicate.parent_execution == ""
    assert predicate.trigger == "api"
    assert predicate.state == "SUCCEEDED"
    assert predicate.error_code == ""
    assert predicate.inputs_digest == digest({"who": "world", "n": 3})
    assert predicate.inputs_digest == digest(as_dict(execution.inputs))
    assert (
        predicate.outputs_digest
        == outputs_digest
        == digest({"message": "hello, world", "count": 2})
    )
    starter = predicate.started_by
    assert (starter.tenant, starter.subject, list(starter.roles)) == (
        "default",
        "olga@example.com",
        ["operator"],
    )
    assert starter.clearance == 3  # CLASSIFICATION_CONFIDENTIAL
    assert (starter.purpose, starter.legal_basis, starter.reason_for_access) == (
        "incident-response",
        "contract",
        "INC-4711",
    )
    assert predicate.create_time == execution.create_time
    assert predicate.start_time == execution.start_time
    assert predicate.end_time == execution.end_time
    assert predicate.cache_hits == 0

    # One decision to start, one to complete the human task (on its step).
    assert len(predicate.policy_decision_ids) == 2
    assert all(predicate.policy_decision_ids)
    results = {r.step_id: r for r in predicate.steps}
    assert list(results["review"].policy_decision_ids) == [predicate.policy_decision_ids[1]]

    # Steps in start order, each attested by digests of what the view shows.
    assert [r.step_id for r in predicate.steps] == ["greet", "review", "each", "each[0]", "each[1]"]
    configs = await config_digests(mesh, workflow, execution.version)
    for step in execution.steps:
        result = results[step.step_id]
        top = step.step_id.split("[", 1)[0]
        assert result.config_digest == configs[top], step.step_id
        assert result.input_digest == (
            digest(as_dict(step.input)) if step.HasField("input") else ""
        )
        assert result.output_digest == digest(as_dict(step.output)), step.step_id
        assert result.state == "SUCCEEDED"
        assert result.attempts == len(step.attempts)
        assert not result.cache_hit and not result.error_code
        assert result.end_time == step.end_time
    assert results["greet"].handler == "echo" and results["each[1]"].handler == "echo"
    assert results["each"].handler == results["review"].handler == ""
    assert results["greet"].start_time == execution.steps[0].attempts[0].start_time
    assert results["each[0]"].input_digest == digest({"n": 1})
    assert results["review"].output_digest == digest({"approved": True})
    assert pending_rows(mesh) == 0


async def test_each_finish_gets_its_own_receipt(mesh: Mesh, sink: Sink) -> None:
    workflow = await mesh.publish(flaky(sink.url), "flaky")
    failed = await mesh.run(workflow)
    assert failed.state == X.EXECUTION_STATE_FAILED, failed
    failed = await wait_receipt(mesh, failed.name)
    first = failed.receipt

    resumed = await mesh.scheduler_client.retry_execution(
        spb.RetryExecutionRequest(name=failed.name, request_id=str(uuid.uuid4()))
    )
    assert resumed.execution.receipt != first
    if resumed.execution.state == X.EXECUTION_STATE_RUNNING:
        assert resumed.execution.receipt == ""  # the retry cleared the finished run's receipt
    done = await mesh.wait(failed.name)
    assert done.state == X.EXECUTION_STATE_SUCCEEDED, done
    done = await wait_receipt(mesh, done.name, other_than=first)
    second = done.receipt

    async with signer_client(mesh.signer) as signer:
        _, _, was = await read_receipt(signer, first)
        _, _, now = await read_receipt(signer, second)
        await asyncio.sleep(0.5)  # a few relay passes: nothing is signed again
        logged = await receipts_of(signer, done.name)
    assert [r.name for r in logged] == [first, second]

    assert (was.state, was.error_code) == ("FAILED", "HTTP_503")
    assert was.outputs_digest == digest({})
    assert [(r.step_id, r.state, r.attempts, r.error_code) for r in was.steps] == [
        ("call", "FAILED", 1, "HTTP_503")
    ]
    assert (now.state, now.error_code) == ("SUCCEEDED", "")
    assert now.outputs_digest == digest(as_dict(done.outputs))
    assert [(r.step_id, r.state, r.attempts, r.error_code) for r in now.steps] == [
        ("call", "SUCCEEDED", 2, "")
    ]
    assert now.steps[0].output_digest == digest(as_dict(done.steps[0].output))
    # The first finish's decisions (the start), then the retry's.
    assert len(was.policy_decision_ids) == 1
    assert list(now.policy_decision_ids[:1]) == list(was.policy_decision_ids)
    assert len(now.policy_decision_ids) == 2
    assert pending_rows(mesh) == 0


async def test_receipts_come_once_the_signer_is_back(mesh: Mesh, sink: Sink) -> None:
    quick = await mesh.publish(RECEIPTED.replace("name: receipted", "name: quick"), "quick")
    workflow = await mesh.publish(flaky(sink.url), "flaky")
    port = mesh.signer.port
    await mesh.signer.stop(0)

    # Executions finish normally while the signer is away.
    done = await mesh.run(workflow)
    assert done.state == X.EXECUTION_STATE_FAILED, done
    await mesh.scheduler_client.retry_execution(
        spb.RetryExecutionRequest(name=done.name, request_id=str(uuid.uuid4()))
    )
    retried = await mesh.wait(done.name)
    assert retried.state == X.EXECUTION_STATE_SUCCEEDED, retried
    cancelled = await mesh.start(quick, {"who": "nobody"})
    await mesh.wait_step(cancelled.name, "review", S.STEP_STATE_WAITING)
    await mesh.scheduler_client.cancel_execution(spb.CancelExecutionRequest(name=cancelled.name))
    assert (await mesh.wait(cancelled.name)).state == X.EXECUTION_STATE_CANCELLED
    # The first finish is superseded by the retry: dropped unsigned, even now;
    # the retried finish and the cancel wait.
    await wait_pending_rows(mesh, 2)
    assert [(await mesh.get(n)).receipt for n in (done.name, cancelled.name)] == ["", ""]

    async with restarted_signer(mesh, port) as client:
        retried = await wait_receipt(mesh, done.name, timeout=30)
        cancelled = await wait_receipt(mesh, cancelled.name, timeout=30)
        _, _, attested = await read_receipt(client, retried.receipt)
        _, _, stopped = await read_receipt(client, cancelled.receipt)
        # One log entry each: the superseded first finish was dropped unsigned.
        assert [r.name for r in await receipts_of(client, done.name)] == [retried.receipt]
        assert [r.name for r in await receipts_of(client, cancelled.name)] == [cancelled.receipt]
    assert (attested.state, len(attested.policy_decision_ids)) == ("SUCCEEDED", 2)
    assert (stopped.state, stopped.error_code) == ("CANCELLED", "CANCELLED")
    review = next(r for r in stopped.steps if r.step_id == "review")
    assert review.state == "CANCELLED"
    assert [r.state for r in stopped.steps if r.step_id.startswith("each")] == ["SKIPPED"]
    assert len(stopped.policy_decision_ids) == 2  # start and cancel
    assert pending_rows(mesh) == 0


async def test_without_a_version_receipt_the_receipt_comes_after_a_bounded_wait(
    mesh: Mesh,
) -> None:
    port = mesh.signer.port
    await mesh.signer.stop(0)
    # Published while the signer is away: the version has no receipt yet.
    workflow = await mesh.publish(RECEIPTED.replace("name: receipted", "name: late"), "late")
    started = await mesh.start(workflow, {"who": "later"})
    await mesh.wait_step(started.name, "review", S.STEP_STATE_WAITING)
    await mesh.scheduler_client.cancel_execution(spb.CancelExecutionRequest(name=started.name))
    assert (await mesh.wait(started.name)).state == X.EXECUTION_STATE_CANCELLED
    # After the wait (1 s here) the finish is signed without the link, for good:
    # a later re-sign must send the same statement.
    await wait_pending_rows(mesh, 1, "without_version_receipt")
    async with restarted_signer(mesh, port) as client:
        execution = await wait_receipt(mesh, started.name, timeout=30)
        _, _, predicate = await read_receipt(client, execution.receipt)
        assert [r.name for r in await receipts_of(client, started.name)] == [execution.receipt]
    assert predicate.version_receipt == ""
    assert predicate.workflow_version == f"{workflow}/versions/{execution.version}"
    assert pending_rows(mesh) == 0


async def test_signing_off_writes_no_pending_receipts(backend: Backend, tmp_path: Path) -> None:
    async with execution_mesh(backend, tmp_path, signer_address="") as mesh:
        await mesh.publish(RECEIPTED, "receipted")
        started = await mesh.start("receipted", {"who": "world"})
        await mesh.wait_step(started.name, "review", S.STEP_STATE_WAITING)
        await mesh.scheduler_client.cancel_execution(spb.CancelExecutionRequest(name=started.name))
        execution = await mesh.wait(started.name)
        assert execution.state == X.EXECUTION_STATE_CANCELLED
        await asyncio.sleep(0.3)
        assert (await mesh.get(started.name)).receipt == ""
        assert pending_rows(mesh) == 0
