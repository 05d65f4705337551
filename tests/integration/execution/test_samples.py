"""Every sample workflow of ``samples/workflows/`` end to end, offline, on both
backends, down each of its branches.

The samples run as written except for two substitutions on the source text
before publishing, both for running offline and fast:

- ``https://<host>.internal`` (the ``http`` steps of routing.yaml and
  approval.yaml) becomes ``http://127.0.0.1:<port>/<host>``: a fake of those
  internal services served by this module (:class:`Internal`). It checks
  credentials and request bodies like the real services would;
- etl.yaml's ``settle`` delay of ``15m`` becomes ``300ms``: the delay still
  goes through the scheduler's durable timer, without a quarter-hour wait.

Every other handler is an offline fake from ``samples/handlers``
(``maestro-sample-handlers``, installed editable by ``make install``), which the
in-process executor loads through the ``maestro.handlers`` entry points. The
secrets the samples reference are set as ``MAESTRO_SECRET_*`` variables, which
the executor reads from this process's environment when a step runs. The
child workflows (payments-disburse, support-escalation) are published and
promoted to ``stable``, the alias their parents start them by.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
import uvicorn
from google.protobuf import json_format
from maestro_samples.data import clean_rows
from maestro_samples.llm import ARTICLES
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from maestro.registry.v1 import registry_service_pb2 as rpb
from maestro.runtime import context
from maestro.runtime.errors import PermissionDeniedError
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as spb
from tests.conftest import free_port
from tests.integration.execution.support import SAMPLES, Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
X = execution_pb2.ExecutionState
S = execution_pb2.StepState

SECRETS = {
    "expense-policy-key": "policy-key-7d1e",
    "risk-api-token": "Bearer risk-token-41b9",
    "sales-raw-reader": "s3-reader-0c2f",
    "slack-bot-token": "xoxb-sample",
    "openai-api-key": "sk-sample",
    "helpdesk-token": "helpdesk-sample",
    "payments-api-key": "payments-sample",
}
SETTLE = "300ms"
WEEKDAY = "2026-11-20"  # a Friday: the fake shop sold something
SUNDAY = "2026-11-22"  # the fake shop is closed on Sundays: no rows


# -- the fake internal services ---------------------------------------------------------------


@dataclass
class Seen:
    """One request to the fake internal services."""

    host: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Internal:
    """``risk``, ``fulfilment`` and ``policy`` ``.internal`` services."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: Request) -> JSONResponse:
        raw = await request.body()
        body = await request.json() if raw else None
        host, path = request.path_params["host"], "/" + request.path_params["path"]
        self.seen.append(Seen(host, path, dict(request.headers), body))
        route = {
            ("risk", "/v1/score"): self.score,
            ("fulfilment", "/v1/orders"): self.fulfil,
            ("policy", "/v1/expenses:check"): self.check_expense,
        }.get((host, path))
        if route is None or request.method != "POST":
            return JSONResponse({"error": f"no {request.method} {host}{path}"}, status_code=404)
        return route(request.headers, body if isinstance(body, dict) else {})

    @staticmethod
    def score(headers: Mapping[str, str], body: Mapping[str, Any]) -> JSONResponse:
        if headers.get("authorization") != SECRETS["risk-api-token"]:
            return JSONResponse({"error": "bad bearer token"}, status_code=401)
        if not isinstance(body.get("amount"), int | float):
            return JSONResponse({"error": "amount is required"}, status_code=400)
        reasons = ["high amount"] if body["amount"] >= 5000 else []
        return JSONResponse({"risk": 0.7 if reasons else 0.1, "reasons": reasons})

    @staticmethod
    def fulfil(headers: Mapping[str, str], body: Mapping[str, Any]) -> JSONResponse:
        del headers
        if not body.get("orderId"):
            return JSONResponse({"error": "orderId is required"}, status_code=400)
        return JSONResponse(
            {"orderId": body["orderId"], "lane": body.get("lane"), "status": "accepted"}
        )

    @staticmethod
    def check_expense(headers: Mapping[str, str], body: Mapping[str, Any]) -> JSONResponse:
        if headers.get("x-api-key") != SECRETS["expense-policy-key"]:
            return JSONResponse({"error": "bad api key"}, status_code=401)
        if not isinstance(body.get("amount"), int | float):
            return JSONResponse({"error": "amount is required"}, status_code=400)
        gift = "gift" in str(body.get("description", "")).lower()
        reason = "gifts need a manager" if gift else "within the expense policy"
        return JSONResponse({"autoApprove": not gift, "reason": reason})

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{host}/{path:path}", self.handle, methods=["GET", "POST", "PUT"])]
        )


@contextlib.asynccontextmanager
async def running_internal() -> AsyncIterator[Internal]:
    internal = Internal(port=free_port())
    config = uvicorn.Config(
        internal.app(), host="127.0.0.1", port=internal.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield internal
    finally:
        server.should_exit = True
        await task


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sample_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The samples' secrets, where the in-process executor resolves them."""
    for name, value in SECRETS.items():
        monkeypatch.setenv("MAESTRO_SECRET_" + name.upper().replace("-", "_"), value)


@pytest.fixture
async def internal() -> AsyncIterator[Internal]:
    async with running_internal() as running:
        yield running


def sample(name: str, internal: Internal | None = None) -> str:
    """A sample's source with the substitutions of the module docstring."""
    source = (SAMPLES / f"{name}.yaml").read_text()
    if internal is not None:
        source = re.sub(r"https://([a-z0-9-]+)\.internal", rf"{internal.url}/\1", source)
    if name == "etl":
        source, count = re.subn(r"duration: 15m\b", f"duration: {SETTLE}", source)
        assert count == 1, "etl.yaml no longer has its 15m settle delay"
    return source


async def publish(mesh: Mesh, name: str, internal: Internal | None = None) -> str:
    """Publishes a sample under its own ``name`` (what sub-workflow steps refer to)."""
    source = sample(name, internal)
    found = re.search(r"^name: ([a-z][a-z0-9-]*)$", source, re.MULTILINE)
    assert found, f"{name}.yaml has no name"
    return await mesh.publish(source, found[1])


async def publish_stable(mesh: Mesh, name: str) -> None:
    """Publishes a child workflow and points its ``stable`` alias at the version."""
    workflow = await publish(mesh, name)
    got = await mesh.registry_client.get_workflow(rpb.GetWorkflowRequest(name=workflow))
    version = got.workflow.latest_version.version
    promoted = await mesh.registry_client.promote_workflow_version(
        rpb.PromoteWorkflowVersionRequest(name=f"{workflow}/versions/{version}", alias="stable")
    )
    assert promoted.workflow.aliases["stable"] == version


def steps_of(execution: execution_pb2.Execution) -> dict[str, execution_pb2.StepRun]:
    return {s.step_id: s for s in execution.steps}


def states(execution: execution_pb2.Execution) -> dict[str, str]:
    """State of every step (and loop iteration), without the prefix."""
    return {s.step_id: S.Name(s.state).removeprefix("STEP_STATE_") for s in execution.steps}


def outputs(execution: execution_pb2.Execution) -> dict[str, Any]:
    return json_format.MessageToDict(execution.outputs)


def output(execution: execution_pb2.Execution, step_id: str) -> dict[str, Any]:
    return json_format.MessageToDict(steps_of(execution)[step_id].output)


def succeeded(execution: execution_pb2.Execution) -> None:
    errors = {
        s.step_id: f"{s.error.code}: {s.error.message}" for s in execution.steps if s.error.code
    }
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED, (
        f"{execution.workflow} ended {X.Name(execution.state)}"
        f" ({execution.error.code}: {execution.error.message});"
        f" steps {states(execution)}; step errors {errors}"
    )


async def child(
    mesh: Mesh, execution: execution_pb2.Execution, step_id: str
) -> execution_pb2.Execution:
    """The child execution a SUBWORKFLOW step ran, which must have succeeded."""
    name = steps_of(execution)[step_id].child_execution
    assert name, f"{step_id} started no child execution"
    run = await mesh.get(name)
    succeeded(run)
    return run


def caller(*roles: str, subject: str = "fran@example.com") -> context.CallContext:
    """A caller of the default tenant (the one the mesh's executions belong to).

    The workflow names who may complete its human task (`role:<assignee>`); the
    default policy bundle also wants the `approver` role for completing any task,
    and clearance, purpose and legal basis for the samples' classified data."""
    return context.CallContext(
        principal=context.Principal(
            tenant="default",
            subject=subject,
            roles=(*roles, "approver"),
            clearance="restricted",
            purpose="operations",
            legal_basis="legitimate-interests",
        )
    )


async def waiting(mesh: Mesh, execution: str, step_id: str) -> execution_pb2.StepRun:
    """The human step once it waits for its task (fails fast if the execution ends first)."""
    async with asyncio.timeout(20):
        while True:
            run = await mesh.get(execution)
            step = steps_of(run).get(step_id)
            if step is not None and step.state == S.STEP_STATE_WAITING:
                return step
            if run.state != X.EXECUTION_STATE_RUNNING:
                succeeded(run)
                raise AssertionError(f"{run.workflow} succeeded without {step_id} waiting")
            await asyncio.sleep(0.05)


async def complete(
    mesh: Mesh, execution: str, step_id: str, result: Mapping[str, Any], *roles: str
) -> None:
    """Completes the human task of a WAITING human step as a holder of ``roles``."""
    step = await waiting(mesh, execution, step_id)
    request = spb.CompleteHumanTaskRequest(name=step.human_task, request_id=str(uuid.uuid4()))
    request.result.update(dict(result))
    with context.bind(caller(*roles)):
        await mesh.scheduler_client.complete_human_task(request)


# -- hello ----------------------------------------------------------------------------------------


async def test_hello(mesh: Mesh) -> None:
    hello = await publish(mesh, "hello")
    execution = await mesh.run(hello, {"who": "world"})
    succeeded(execution)
    assert states(execution) == {"greet": "SUCCEEDED", "pause": "SUCCEEDED", "reply": "SUCCEEDED"}
    assert output(execution, "reply") == {"message": "hello, world"}


# -- routing --------------------------------------------------------------------------------------

ORDER = {"orderId": "ord-1001", "customer": "ada@example.com", "country": "DE"}


async def test_routing_low_risk_order_is_fulfilled_at_once(mesh: Mesh, internal: Internal) -> None:
    routing = await publish(mesh, "routing", internal)
    execution = await mesh.run(routing, {**ORDER, "amount": 120.0})
    succeeded(execution)
    assert states(execution) == {
        "score": "SUCCEEDED",
        "decide": "SUCCEEDED",
        "fulfil": "SUCCEEDED",
        "review": "SKIPPED",
        "verdict": "SKIPPED",
        "fulfil_reviewed": "SKIPPED",
        "reject": "SKIPPED",
    }
    assert outputs(execution) == {"risk": 0.1}
    assert output(execution, "decide") == {"result": True}
    orders = [s.body for s in internal.seen if s.host == "fulfilment"]
    assert orders == [{"orderId": "ord-1001", "lane": "express"}]


async def test_routing_risky_order_is_fulfilled_once_a_risk_officer_approves(
    mesh: Mesh, internal: Internal
) -> None:
    routing = await publish(mesh, "routing", internal)
    started = await mesh.start(routing, {**ORDER, "amount": 9000.0})
    verdict = {"approved": True, "note": "known customer"}
    await complete(mesh, started.name, "review", verdict, "risk-officer")
    execution = await mesh.wait(started.name)
    succeeded(execution)
    assert states(execution) == {
        "score": "SUCCEEDED",
        "decide": "SUCCEEDED",
        "fulfil": "SKIPPED",
        "review": "SUCCEEDED",
        "verdict": "SUCCEEDED",
        "fulfil_reviewed": "SUCCEEDED",
        "reject": "SKIPPED",
    }
    assert outputs(execution) == {"risk": 0.7}
    assert output(execution, "review") == verdict
    orders = [s.body for s in internal.seen if s.host == "fulfilment"]
    assert orders == [{"orderId": "ord-1001", "lane": "standard", "note": "known customer"}]


# -- rag ------------------------------------------------------------------------------------------

PASSWORD_RESET = next(a for a in ARTICLES if a.id == "kb-password-reset")
INVOICES = next(a for a in ARTICLES if a.id == "kb-invoices")


def first_sentence(text: str) -> str:
    return text.split(". ", 1)[0] + "."


async def test_rag_confident_answer_is_sent(mesh: Mesh) -> None:
    rag = await publish(mesh, "rag")
    question = "How do I reset my password?"
    execution = await mesh.run(rag, {"ticketId": "T-100", "question": question, "product": "cloud"})
    succeeded(execution)
    assert states(execution) == {
        "embed": "SUCCEEDED",
        "retrieve": "SUCCEEDED",
        "generate": "SUCCEEDED",
        "confident": "SUCCEEDED",
        "reply": "SUCCEEDED",
        "escalate": "SKIPPED",
    }
    answer = first_sentence(PASSWORD_RESET.text) + " [1]"
    assert outputs(execution) == {"answer": answer, "citations": ["kb-password-reset"]}
    assert output(execution, "generate") == {"answer": answer, "confidence": 0.9}
    reply = output(execution, "reply")
    assert reply["ticketId"] == "T-100" and reply["status"] == "sent"


async def test_rag_unsure_answer_is_escalated(mesh: Mesh) -> None:
    await publish_stable(mesh, "support-escalation")
    rag = await publish(mesh, "rag")
    question = "I am unsure whether my invoice total is right"
    execution = await mesh.run(rag, {"ticketId": "T-200", "question": question, "product": "cloud"})
    succeeded(execution)
    assert states(execution) == {
        "embed": "SUCCEEDED",
        "retrieve": "SUCCEEDED",
        "generate": "SUCCEEDED",
        "confident": "SUCCEEDED",
        "reply": "SKIPPED",
        "escalate": "SUCCEEDED",
    }
    assert output(execution, "confident") == {"result": False}
    assert outputs(execution)["citations"] == ["kb-invoices"]
    escalation = await child(mesh, execution, "escalate")
    assert (escalation.workflow, escalation.alias) == ("workflows/support-escalation", "stable")
    assert states(escalation) == {"note": "SUCCEEDED", "page": "SUCCEEDED"}
    note = output(escalation, "note")
    assert note["ticketId"] == "T-200" and note["queue"] == "tier-2"
    assert first_sentence(INVOICES.text) in steps_of(escalation)["note"].input["body"]
    assert output(execution, "escalate") == {"noteId": note["noteId"], "queue": "tier-2"}


# -- etl ------------------------------------------------------------------------------------------


async def test_etl_weekday_is_loaded(mesh: Mesh) -> None:
    etl = await publish(mesh, "etl")
    execution = await mesh.run(etl, {"date": WEEKDAY, "regions": ["eu", "us"]})
    succeeded(execution)
    assert states(execution) == {
        "settle": "SUCCEEDED",
        "list_partitions": "SUCCEEDED",
        "extract": "SUCCEEDED",
        "extract[0]": "SUCCEEDED",
        "extract[1]": "SUCCEEDED",
        "transform": "SUCCEEDED",
        "quality": "SUCCEEDED",
        "load": "SUCCEEDED",
        "alert": "SKIPPED",
    }
    rows = clean_rows(date.fromisoformat(WEEKDAY))
    assert rows > 0
    assert outputs(execution) == {"rows": rows, "loaded": rows}
    extracted = output(execution, "extract")["results"]
    assert [r["partition"] for r in extracted] == [
        f"s3://sales-raw/sales/date={WEEKDAY}/region=eu",
        f"s3://sales-raw/sales/date={WEEKDAY}/region=us",
    ]
    assert all(r["rows"] > 0 for r in extracted)
    assert output(execution, "quality") == {"result": True}
    assert "fire_time" in output(execution, "settle")


async def test_etl_day_without_sales_alerts(mesh: Mesh) -> None:
    etl = await publish(mesh, "etl")
    execution = await mesh.run(etl, {"date": SUNDAY, "regions": ["eu", "us", "apac"]})
    succeeded(execution)
    assert states(execution) == {
        "settle": "SUCCEEDED",
        "list_partitions": "SUCCEEDED",
        "extract": "SUCCEEDED",
        "extract[0]": "SUCCEEDED",
        "extract[1]": "SUCCEEDED",
        "extract[2]": "SUCCEEDED",
        "transform": "SUCCEEDED",
        "quality": "SUCCEEDED",
        "load": "SKIPPED",
        "alert": "SUCCEEDED",
    }
    # `loaded` reads the skipped `load` step: it is absent (or null), not a failure.
    result = outputs(execution)
    assert result["rows"] == 0 and result.get("loaded") is None
    assert output(execution, "quality") == {"result": False}
    alert = output(execution, "alert")
    assert alert["channel"] == "#data-alerts"
    assert alert["text"] == f"nightly-sales-etl: no rows for {SUNDAY}"


# -- approval -------------------------------------------------------------------------------------

EXPENSE = {
    "expenseId": "exp-42",
    "currency": "EUR",
    "submitter": "sam@example.com",
    "description": "Train to the customer workshop",
}


async def test_approval_small_expense_is_paid_at_once(mesh: Mesh, internal: Internal) -> None:
    await publish_stable(mesh, "payments-disburse")
    approval = await publish(mesh, "approval", internal)
    execution = await mesh.run(approval, {**EXPENSE, "amount": 120.0})
    succeeded(execution)
    assert states(execution) == {
        "policy_check": "SUCCEEDED",
        "route": "SUCCEEDED",
        "pay_now": "SUCCEEDED",
        "manager_review": "SKIPPED",
        "outcome": "SKIPPED",
        "pay_approved": "SKIPPED",
        "notify_rejection": "SKIPPED",
    }
    assert outputs(execution) == {"policy": "within the expense policy"}
    [check] = [s.body for s in internal.seen if s.host == "policy"]
    assert check == {"amount": 120.0, "currency": "EUR", "description": EXPENSE["description"]}
    payment = await child(mesh, execution, "pay_now")
    assert (payment.workflow, payment.alias) == ("workflows/payments-disburse", "stable")
    assert json_format.MessageToDict(payment.inputs) == {
        "expenseId": "exp-42",
        "amount": 120.0,
        "payee": "sam@example.com",
    }
    assert states(payment) == {"disburse": "SUCCEEDED", "remit": "SUCCEEDED"}
    assert outputs(payment)["paymentId"].startswith("pay-")
    assert output(execution, "pay_now") == outputs(payment)


async def test_approval_large_expense_approved_by_a_manager_is_paid(
    mesh: Mesh, internal: Internal
) -> None:
    await publish_stable(mesh, "payments-disburse")
    approval = await publish(mesh, "approval", internal)
    started = await mesh.start(approval, {**EXPENSE, "amount": 2400.0})
    review = await waiting(mesh, started.name, "manager_review")
    request = spb.CompleteHumanTaskRequest(name=review.human_task, request_id=str(uuid.uuid4()))
    request.result.update({"approved": True})
    with context.bind(caller(subject="eve@example.com")), pytest.raises(PermissionDeniedError):
        await mesh.scheduler_client.complete_human_task(request)  # not an assignee
    await complete(mesh, started.name, "manager_review", {"approved": True}, "finance-manager")
    execution = await mesh.wait(started.name)
    succeeded(execution)
    assert states(execution) == {
        "policy_check": "SUCCEEDED",
        "route": "SUCCEEDED",
        "pay_now": "SKIPPED",
        "manager_review": "SUCCEEDED",
        "outcome": "SUCCEEDED",
        "pay_approved": "SUCCEEDED",
        "notify_rejection": "SKIPPED",
    }
    assert output(execution, "route") == {"result": False}
    payment = await child(mesh, execution, "pay_approved")
    assert states(payment) == {"disburse": "SUCCEEDED", "remit": "SUCCEEDED"}
    assert output(execution, "pay_approved") == outputs(payment)


async def test_approval_large_expense_rejected_by_a_manager_is_not_paid(
    mesh: Mesh, internal: Internal
) -> None:
    await publish_stable(mesh, "payments-disburse")
    approval = await publish(mesh, "approval", internal)
    started = await mesh.start(approval, {**EXPENSE, "amount": 2400.0})
    verdict = {"approved": False, "comment": "no receipt attached"}
    await complete(mesh, started.name, "manager_review", verdict, "finance-manager")
    execution = await mesh.wait(started.name)
    succeeded(execution)
    assert states(execution) == {
        "policy_check": "SUCCEEDED",
        "route": "SUCCEEDED",
        "pay_now": "SKIPPED",
        "manager_review": "SUCCEEDED",
        "outcome": "SUCCEEDED",
        "pay_approved": "SKIPPED",
        "notify_rejection": "SUCCEEDED",
    }
    assert output(execution, "manager_review") == verdict
    email = output(execution, "notify_rejection")
    assert email["to"] == "sam@example.com" and email["template"] == "expense-rejected"
    assert not steps_of(execution)["pay_approved"].child_execution
