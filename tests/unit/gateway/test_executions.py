"""Execution routes of the gateway.

Mostly against a SchedulerService double on a real gRPC server, which records
requests and serves canned answers: request translation (filters,
Idempotency-Key -> request_id, Last-Event-ID -> after_sequence), response
shapes (executions, CloudEvents), problem+json errors, and the SSE stream
through a real HTTP server (framing, keep-alive, resume, client disconnect
cancelling the gRPC stream). Then a run through the real scheduler (and
registry, without an executor) to check the translation against the service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from maestro.runtime.errors import InvalidArgumentError
from maestro.runtime.server import GrpcServer
from maestro.scheduler.v1 import execution_pb2 as ex
from maestro.services.gateway.app import create_app
from maestro.services.gateway.backends import BackendMonitor
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.executions import after_sequence
from maestro.services.gateway.server import GatewayServer, create_server
from maestro.services.gateway.sse import sse_event
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.server import create_server as create_scheduler
from tests.conftest import REPO, AuthoringMesh, free_port
from tests.teardown import stop_within
from tests.unit.scheduler_double import FakeScheduler, start_fake_scheduler

pytestmark = pytest.mark.timeout(30)

PROBLEM = "application/problem+json"


@dataclass
class Scheduler:
    fake: FakeScheduler
    server: GrpcServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


def settings_for(scheduler: Scheduler, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        f"{svc}_address": f"127.0.0.1:{free_port()}"
        for svc in ("compiler", "registry", "executor", "policy", "signer")
    }
    values.update(scheduler_address=scheduler.address, client_timeout_seconds=2)
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    fake, server = await start_fake_scheduler()
    try:
        yield Scheduler(fake, server)
    finally:
        await server.stop(0)


@pytest.fixture
async def http(scheduler: Scheduler) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(scheduler)
    clients = Clients.open(settings, TracerProvider())
    backends = BackendMonitor({}, timeout=1, interval=60)
    app = create_app(settings, backends, CollectorRegistry(), clients, TracerProvider())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client
    finally:
        await clients.close()
        await backends.stop()


@pytest.fixture
async def gateway(scheduler: Scheduler) -> AsyncIterator[GatewayServer]:
    """A real HTTP server (streaming and disconnects need one)."""
    server = await create_server(
        settings_for(scheduler, port=0, sse_keepalive_seconds=0.2),
        tracer_provider=TracerProvider(),
    )
    try:
        yield server
    finally:
        await server.stop()


# --- starting executions ---------------------------------------------------------


async def test_execute_translates_the_body_and_the_idempotency_key(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    key = str(uuid.uuid4())
    response = await http.post(
        "/api/workflows/hello/execute",
        json={
            "inputs": {"count": 3, "tags": ["a"]},
            "version": "stable",
            "correlationId": "order-7",
            "labels": {"team": "data"},
            "timeout": "30s",
        },
        headers={"Idempotency-Key": key, "x-maestro-tenant": "acme"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    execution_id = body["executionId"]
    assert body["created"] is True
    assert body["execution"]["executionId"] == execution_id
    assert body["execution"]["name"] == f"executions/{execution_id}"
    assert body["execution"]["inputs"] == {"count": 3, "tags": ["a"]}  # integral stays int
    assert response.headers["location"] == f"/api/executions/{execution_id}"
    call = scheduler.fake.last("StartExecution")
    request = call.request
    assert request.workflow == "workflows/hello"
    assert request.version == "stable"
    assert request.request_id == key
    assert request.correlation_id == "order-7"
    assert dict(request.labels) == {"team": "data"}
    assert request.timeout.seconds == 30
    assert request.inputs["count"] == 3
    assert call.principal.tenant == "acme"

    repeat = await http.post(
        "/api/workflows/hello/execute", json={}, headers={"Idempotency-Key": key}
    )
    assert repeat.status_code == 202
    assert repeat.json()["executionId"] == execution_id
    assert repeat.json()["created"] is False


async def test_execute_without_a_key_or_body_generates_a_uuid4(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    first = await http.post("/api/workflows/hello/execute")
    second = await http.post("/api/workflows/hello/execute", json={})
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["executionId"] != second.json()["executionId"]
    ids = [r.request_id for r in scheduler.fake.requests("StartExecution")]
    assert [uuid.UUID(i).version for i in ids] == [4, 4]
    assert ids[0] != ids[1]
    assert scheduler.fake.requests("StartExecution")[0].version == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": {}, "colour": "red"}, "body.colour"),
        ({"inputs": []}, "body.inputs"),
        ({"timeout": "30 seconds"}, "body.timeout"),
        ({"labels": {"a": 1}}, "body.labels.a"),
    ],
)
async def test_execute_rejects_bad_bodies(
    http: httpx.AsyncClient, scheduler: Scheduler, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/api/workflows/hello/execute", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert field in [v["field"] for v in response.json()["violations"]]
    assert scheduler.fake.requests("StartExecution") == []


async def test_execute_an_unknown_workflow_is_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/workflows/missing/execute", json={})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["reason"] == "WORKFLOW_NOT_FOUND"


# --- reading executions ----------------------------------------------------------


async def test_list_builds_the_filter_from_the_query(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    response = await http.get(
        "/api/executions",
        params=[
            ("status", "running"),
            ("status", "FAILED,EXECUTION_STATE_PENDING"),
            ("workflowId", "hello"),
            ("startedAfter", "2025-09-01T02:00:00+02:00"),
            ("tenant", 'ac"me'),
            ("pageSize", "20"),
            ("pageToken", "tok"),
            ("view", "FULL"),
        ],
    )
    assert response.status_code == 200, response.text
    request = scheduler.fake.last("ListExecutions").request
    assert request.filter == (
        "(state = RUNNING OR state = FAILED OR state = PENDING)"
        ' AND workflow = "workflows/hello"'
        ' AND start_time >= "2025-09-01T00:00:00Z"'
        ' AND tenant = "ac\\"me"'
    )
    assert (request.page_size, request.page_token) == (20, "tok")
    assert request.view == ex.EXECUTION_VIEW_FULL
    body = response.json()
    assert [e["executionId"] for e in body["executions"]] == ["done", "live"]
    assert body["executions"][1]["state"] == "EXECUTION_STATE_RUNNING"
    assert body["nextPageToken"] == "page-2"


async def test_list_defaults_to_no_filter_and_the_basic_view(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    assert (await http.get("/api/executions")).status_code == 200
    request = scheduler.fake.last("ListExecutions").request
    assert (request.filter, request.view) == ("", ex.EXECUTION_VIEW_BASIC)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "RUNNING,SLEEPING"}, "query.status"),
        ({"view": "everything"}, "query.view"),
        ({"startedAfter": "yesterday"}, "query.startedAfter"),
        ({"pageSize": "5000"}, "query.pageSize"),
    ],
)
async def test_list_rejects_bad_query_parameters(
    http: httpx.AsyncClient, scheduler: Scheduler, params: dict[str, str], field: str
) -> None:
    response = await http.get("/api/executions", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert field in [v["field"] for v in response.json()["violations"]]
    assert scheduler.fake.requests("ListExecutions") == []


async def test_get_returns_the_full_timeline_with_durations(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    response = await http.get("/api/executions/done")
    assert response.status_code == 200
    assert response.headers["etag"] == '"etag-1"'
    body = response.json()
    assert scheduler.fake.last("GetExecution").request.view == ex.EXECUTION_VIEW_FULL
    assert body["executionId"] == "done"
    assert body["state"] == "EXECUTION_STATE_SUCCEEDED"
    assert body["duration"] == "3s"
    assert body["outputs"] == {"total": 3, "ratio": 0.5}
    assert body["lastEventSequence"] == "4"  # int64: a string in proto JSON
    fetch, report = body["steps"]
    assert (fetch["stepId"], fetch["duration"]) == ("fetch", "2s")
    assert [a["duration"] for a in fetch["attempts"]] == ["0.500s", "1.250s"]
    assert fetch["attempts"][0]["error"]["code"] == "HTTP_502"
    assert report["duration"] == "1s"


async def test_malformed_and_unknown_execution_ids(http: httpx.AsyncClient) -> None:
    malformed = await http.get("/api/executions/bad!id")
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == PROBLEM
    assert malformed.json()["reason"] == "INVALID_ARGUMENT"
    assert "malformed" in malformed.json()["detail"]
    missing = await http.get("/api/executions/missing")
    assert (missing.status_code, missing.json()["reason"]) == (404, "EXECUTION_NOT_FOUND")


# --- controlling executions ------------------------------------------------------


async def test_cancel_passes_reason_etag_and_key(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    response = await http.post(
        "/api/executions/live/cancel",
        json={"reason": "wrong inputs"},
        headers={"If-Match": '"etag-1"', "Idempotency-Key": "k-1"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "EXECUTION_STATE_CANCELLING"
    request = scheduler.fake.last("CancelExecution").request
    assert (request.name, request.reason, request.etag, request.request_id) == (
        "executions/live",
        "wrong inputs",
        "etag-1",
        "k-1",
    )
    bare = await http.post("/api/executions/live/cancel")
    assert bare.status_code == 200
    request = scheduler.fake.last("CancelExecution").request
    assert (request.reason, request.etag, request.request_id) == ("", "", "")


async def test_cancel_of_a_finished_execution_is_a_state_conflict(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/api/executions/done/cancel", json={})
    assert response.status_code == 400
    assert response.json()["reason"] == "EXECUTION_STATE_CONFLICT"
    assert response.json()["code"] == "FAILED_PRECONDITION"
    assert response.json()["metadata"] == {"state": "SUCCEEDED"}


@pytest.mark.parametrize(
    ("execution_id", "state", "retry_after"),
    [("done", "SUCCEEDED", "2"), ("live", "RUNNING", None)],
)
async def test_evidence_without_a_receipt_is_pending(
    http: httpx.AsyncClient,
    scheduler: Scheduler,
    execution_id: str,
    state: str,
    retry_after: str | None,
) -> None:
    response = await http.get(f"/api/executions/{execution_id}/evidence")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.headers.get("retry-after") == retry_after
    problem = response.json()
    assert (problem["reason"], problem["code"]) == ("RECEIPT_PENDING", "FAILED_PRECONDITION")
    assert problem["metadata"] == {"name": f"executions/{execution_id}", "state": state}
    assert scheduler.fake.last("GetExecution").request.view == ex.EXECUTION_VIEW_BASIC


async def test_retry_uses_the_key_or_generates_one(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    keyed = await http.post("/api/executions/done/retry", headers={"Idempotency-Key": "k-9"})
    assert keyed.status_code == 200
    assert keyed.json()["state"] == "EXECUTION_STATE_RUNNING"
    assert (await http.post("/api/executions/done/retry")).status_code == 200
    first, second = scheduler.fake.requests("RetryExecution")
    assert (first.name, first.request_id) == ("executions/done", "k-9")
    assert uuid.UUID(second.request_id).version == 4


async def test_compensate(http: httpx.AsyncClient, scheduler: Scheduler) -> None:
    response = await http.post("/api/executions/done/compensate", json={"reason": "undo"})
    assert response.status_code == 200
    assert response.json()["state"] == "EXECUTION_STATE_COMPENSATING"
    assert scheduler.fake.last("CompensateExecution").request.reason == "undo"


# --- events ----------------------------------------------------------------------


async def test_events_list_is_cloudevents(http: httpx.AsyncClient, scheduler: Scheduler) -> None:
    response = await http.get(
        "/api/executions/done/events", params={"after": 1, "pageSize": 2, "pageToken": "p"}
    )
    assert response.status_code == 200
    request = scheduler.fake.last("ListExecutionEvents").request
    assert (request.after_sequence, request.page_size, request.page_token) == (1, 2, "p")
    body = response.json()
    assert body["nextPageToken"] == "next"
    started, succeeded = body["events"]
    assert started == {
        "specversion": "1.0",
        "id": "2",
        "source": "//scheduler.maestro.dev/executions/done",
        "type": "dev.maestro.step.started",
        "subject": "fetch",
        "time": "2026-01-01T00:00:02Z",
        "datacontenttype": "application/json",
        "executionid": "done",
        "sequence": "0000000000000000002",
        "attempt": 1,
        "data": {"worker_identity": "w-1", "delivery": 1},
    }
    assert succeeded["type"] == "dev.maestro.step.succeeded"


def test_sse_event_framing() -> None:
    assert sse_event('{"a":1}', event="dev.maestro.step.started", event_id="7") == (
        'id: 7\nevent: dev.maestro.step.started\ndata: {"a":1}\n\n'
    )
    assert sse_event("one\ntwo") == "data: one\ndata: two\n\n"


def test_after_sequence_from_last_event_id_or_after() -> None:
    assert after_sequence(None, None) == 0
    assert after_sequence(None, 3) == 3
    assert after_sequence(" 12 ", 3) == 12
    assert after_sequence("", 3) == 3
    for bad in ("abc", "-1", "1.5", "١٢"):
        with pytest.raises(InvalidArgumentError):
            after_sequence(bad, None)


async def read_frames(response: httpx.Response, limit: int = 100) -> list[dict[str, str]]:
    """SSE frames until the response ends (or ``limit`` frames); a comment is
    a frame with a ``comment`` key."""
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if frame:
                frames.append(frame)
                frame = {}
                if len(frames) >= limit:
                    break
            continue
        if line.startswith(":"):
            frames.append({"comment": line[1:].strip()})
            if len(frames) >= limit:
                break
            continue
        key, _, value = line.partition(":")
        frame[key] = value.removeprefix(" ")
    return frames


def base_url(gateway: GatewayServer) -> str:
    return f"http://127.0.0.1:{gateway.port}"


async def test_stream_sends_each_event_and_ends_after_the_terminal_one(
    gateway: GatewayServer, scheduler: Scheduler
) -> None:
    async with (
        httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client,
        client.stream("GET", "/api/executions/done/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        frames = await read_frames(response)
    assert [f["id"] for f in frames] == ["1", "2", "3", "4"]
    assert [f["event"] for f in frames] == [
        "dev.maestro.execution.started",
        "dev.maestro.step.started",
        "dev.maestro.step.succeeded",
        "dev.maestro.execution.succeeded",
    ]
    first = json.loads(frames[0]["data"])
    assert "subject" not in first
    assert "attempt" not in first
    assert first["executionid"] == "done"
    assert first["type"] == frames[0]["event"]
    assert json.loads(frames[2]["data"])["attempt"] == 2
    call = scheduler.fake.last("StreamExecutionEvents")
    assert (call.request.name, call.request.after_sequence, call.request.follow) == (
        "executions/done",
        0,
        True,
    )


async def test_stream_carries_the_callers_identity(
    gateway: GatewayServer, scheduler: Scheduler
) -> None:
    async with (
        httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client,
        client.stream(
            "GET",
            "/api/executions/done/stream",
            headers={"x-maestro-tenant": "acme", "x-request-id": "req-sse"},
        ) as response,
    ):
        await read_frames(response)
    assert scheduler.fake.last("GetExecution").principal.tenant == "acme"
    call = scheduler.fake.last("StreamExecutionEvents")
    assert (call.principal.tenant, call.request_id) == ("acme", "req-sse")


async def test_stream_resumes_after_last_event_id_or_after(
    gateway: GatewayServer, scheduler: Scheduler
) -> None:
    async with httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client:
        async with client.stream(
            "GET", "/api/executions/done/stream", headers={"Last-Event-ID": "2"}
        ) as response:
            assert [f["id"] for f in await read_frames(response)] == ["3", "4"]
        async with client.stream("GET", "/api/executions/done/stream?after=3") as response:
            assert [f["id"] for f in await read_frames(response)] == ["4"]
        async with client.stream(
            "GET", "/api/executions/done/stream?after=1", headers={"Last-Event-ID": "3"}
        ) as response:
            assert [f["id"] for f in await read_frames(response)] == ["4"]
    starts = [r.after_sequence for r in scheduler.fake.requests("StreamExecutionEvents")]
    assert starts == [2, 3, 3]


async def test_stream_errors_before_streaming_are_problems(
    gateway: GatewayServer, scheduler: Scheduler
) -> None:
    async with httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client:
        bad_id = await client.get("/api/executions/done/stream", headers={"Last-Event-ID": "seven"})
        assert bad_id.status_code == 400
        assert bad_id.headers["content-type"] == PROBLEM
        assert bad_id.json()["violations"][0]["field"] == "header.Last-Event-ID"
        bad_after = await client.get("/api/executions/done/stream?after=x")
        assert bad_after.status_code == 400
        missing = await client.get("/api/executions/missing/stream")
        assert (missing.status_code, missing.json()["reason"]) == (404, "EXECUTION_NOT_FOUND")
        malformed = await client.get("/api/executions/bad!id/stream")
        assert (malformed.status_code, malformed.json()["reason"]) == (400, "INVALID_ARGUMENT")
    assert scheduler.fake.requests("StreamExecutionEvents") == []


async def test_stream_keeps_alive_and_a_disconnect_cancels_the_grpc_stream(
    gateway: GatewayServer, scheduler: Scheduler
) -> None:
    async with (
        httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client,
        client.stream("GET", "/api/executions/live/stream") as response,
    ):
        frames = await read_frames(response, limit=5)
        assert [f.get("id") for f in frames[:3]] == ["1", "2", "3"]
        assert frames[3:] == [{"comment": "keep-alive"}, {"comment": "keep-alive"}]
        assert scheduler.fake.streams_open == 1
    # The client went away: the gateway cancels its gRPC stream.
    cancelled = await asyncio.to_thread(scheduler.fake.stream_cancelled.wait, 5)
    assert cancelled
    assert scheduler.fake.streams_open == 0


async def test_a_failure_mid_stream_is_an_error_event(gateway: GatewayServer) -> None:
    async with (
        httpx.AsyncClient(base_url=base_url(gateway), timeout=10) as client,
        client.stream("GET", "/api/executions/broken/stream") as response,
    ):
        assert response.status_code == 200
        frames = await read_frames(response)
    assert [f.get("event") for f in frames] == ["dev.maestro.execution.started", "error"]
    assert "id" not in frames[1]
    problem = json.loads(frames[1]["data"])
    assert (problem["reason"], problem["code"]) == ("DEPENDENCY_UNAVAILABLE", "UNAVAILABLE")
    assert problem["instance"] == "/api/executions/broken/stream"
    assert problem["requestId"]


# --- human tasks -----------------------------------------------------------------


async def test_human_tasks_list_get_and_complete(
    http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    listed = await http.get(
        "/api/human-tasks",
        params={
            "state": "open,ESCALATED",
            "executionId": "live",
            "stepId": "approve",
            "assignee": "role:approver",
            "assignedToMe": "true",
        },
    )
    assert listed.status_code == 200, listed.text
    request = scheduler.fake.last("ListHumanTasks").request
    assert request.filter == (
        '(state = OPEN OR state = ESCALATED) AND execution = "executions/live"'
        ' AND step_id = "approve" AND assignees: "role:approver"'
    )
    assert request.assigned_to_caller is True
    task = listed.json()["humanTasks"][0]
    assert (task["humanTaskId"], task["state"]) == ("t-1", "HUMAN_TASK_STATE_OPEN")

    got = await http.get("/api/human-tasks/t-1")
    assert got.status_code == 200
    assert got.headers["etag"] == '"task-etag"'
    assert got.json()["formSchema"]["required"] == ["approved"]
    missing = await http.get("/api/human-tasks/t-2")
    assert (missing.status_code, missing.json()["reason"]) == (404, "HUMAN_TASK_NOT_FOUND")

    completed = await http.post(
        "/api/human-tasks/t-1/complete",
        json={"result": {"approved": True, "amount": 12}},
        headers={"Idempotency-Key": "k-5", "x-maestro-subject": "ana"},
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["result"] == {"approved": True, "amount": 12}
    assert completed.json()["completedBy"] == "ana"
    request = scheduler.fake.last("CompleteHumanTask").request
    assert (request.name, request.request_id) == ("humanTasks/t-1", "k-5")

    await http.post("/api/human-tasks/t-1/complete", json={"result": {}})
    assert uuid.UUID(scheduler.fake.last("CompleteHumanTask").request.request_id).version == 4
    bad = await http.post("/api/human-tasks/t-1/complete", json={"result": "yes"})
    assert bad.status_code == 400


async def test_openapi_lists_the_execution_routes(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    expected = {
        ("/api/workflows/{id}/execute", "post"),
        ("/api/executions", "get"),
        ("/api/executions/{id}", "get"),
        ("/api/executions/{id}/cancel", "post"),
        ("/api/executions/{id}/retry", "post"),
        ("/api/executions/{id}/compensate", "post"),
        ("/api/executions/{id}/events", "get"),
        ("/api/executions/{id}/stream", "get"),
        ("/api/executions/{id}/evidence", "get"),
        ("/api/human-tasks", "get"),
        ("/api/human-tasks/{id}", "get"),
        ("/api/human-tasks/{id}/complete", "post"),
    }
    for path, method in expected:
        operation = paths[path][method]
        assert operation["summary"], (path, method)
        assert "422" not in operation["responses"]
    stream = paths["/api/executions/{id}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert "Last-Event-ID" in [p["name"] for p in stream["parameters"]]
    assert "202" in paths["/api/workflows/{id}/execute"]["post"]["responses"]
    bundle = paths["/api/executions/{id}/evidence"]["get"]["responses"]
    assert "application/gzip" in bundle["200"]["content"] and "409" in bundle


# --- against the real scheduler (with the real registry; no executor) -----------


@dataclass
class Mesh:
    gateway: GatewayServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"


@pytest.fixture
async def mesh(authoring_mesh: AuthoringMesh, tmp_path: Path) -> AsyncIterator[Mesh]:
    """Compiler, registry and scheduler, and a gateway in front; `hello` published."""
    scheduler = await create_scheduler(
        SchedulerSettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path,
            registry_address=authoring_mesh.registry_address,
            policy_address=authoring_mesh.policy_address,
        )
    )
    others = {f"{s}_address": f"127.0.0.1:{free_port()}" for s in ("executor", "signer")}
    gateway = await create_server(
        GatewaySettings(
            port=0,
            sse_keepalive_seconds=0.2,
            compiler_address=authoring_mesh.compiler_address,
            registry_address=authoring_mesh.registry_address,
            scheduler_address=f"127.0.0.1:{scheduler.port}",
            policy_address=authoring_mesh.policy_address,
            **others,
        ),
        tracer_provider=TracerProvider(),
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
            created = await client.post(
                "/api/workflows?workflowId=hello",
                content=(REPO / "samples/workflows/hello.yaml").read_bytes(),
                headers={"content-type": "application/yaml"},
            )
            assert created.status_code == 201, created.text
            published = await client.post("/api/workflows/hello/publish", json={})
            assert published.status_code == 201, published.text
        yield Mesh(gateway)
    finally:
        await stop_within("gateway", gateway.stop())
        await stop_within("scheduler", scheduler.stop(0))


async def test_run_read_stream_cancel_and_errors_with_the_real_scheduler(mesh: Mesh) -> None:
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=mesh.url, timeout=10) as client:
        started = await client.post(
            "/api/workflows/hello/execute",
            json={"inputs": {"who": "ana"}, "version": "1.0.0", "labels": {"team": "data"}},
            headers={"Idempotency-Key": key},
        )
        assert started.status_code == 202, started.text
        execution_id = started.json()["executionId"]
        assert started.headers["location"] == f"/api/executions/{execution_id}"
        repeat = await client.post(
            "/api/workflows/hello/execute",
            json={"inputs": {"who": "ana"}, "version": "1.0.0", "labels": {"team": "data"}},
            headers={"Idempotency-Key": key},
        )
        assert (repeat.json()["executionId"], repeat.json()["created"]) == (execution_id, False)

        got = (await client.get(f"/api/executions/{execution_id}")).json()
        assert got["state"] in ("EXECUTION_STATE_PENDING", "EXECUTION_STATE_RUNNING")
        assert [s["stepId"] for s in got["steps"]] == ["greet", "pause", "reply"]
        listed = await client.get(
            "/api/executions",
            params={"status": "PENDING,RUNNING", "workflowId": "hello", "tenant": "default"},
        )
        assert listed.status_code == 200, listed.text
        assert [e["executionId"] for e in listed.json()["executions"]] == [execution_id]
        assert "steps" not in listed.json()["executions"][0]  # basic view

        # No executor: the stream stays open and idle, with keep-alives.
        async with client.stream("GET", f"/api/executions/{execution_id}/stream") as response:
            frames = await read_frames(response, limit=8)
        events = [f for f in frames if "id" in f]
        assert events[0]["event"] == "dev.maestro.execution.started"
        assert [int(f["id"]) for f in events] == list(range(1, len(events) + 1))
        assert {"comment": "keep-alive"} in frames

        cancelled = await client.post(
            f"/api/executions/{execution_id}/cancel", json={"reason": "test"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] in (
            "EXECUTION_STATE_CANCELLING",
            "EXECUTION_STATE_CANCELLED",
        )
        # Resume after what was seen; the stream ends with the terminal event.
        async with client.stream(
            "GET",
            f"/api/executions/{execution_id}/stream",
            headers={"Last-Event-ID": events[-1]["id"]},
        ) as response:
            rest = await read_frames(response)
        resumed = [f for f in rest if "id" in f]
        assert int(resumed[0]["id"]) == int(events[-1]["id"]) + 1
        assert resumed[-1]["event"] == "dev.maestro.execution.cancelled"

        page = await client.get(f"/api/executions/{execution_id}/events", params={"after": 1})
        assert page.status_code == 200
        assert page.json()["events"][0]["id"] == "2"

        # The scheduler's errors, as problems.
        malformed = await client.get("/api/executions/not-a-ulid")
        assert (malformed.status_code, malformed.json()["reason"]) == (400, "INVALID_ARGUMENT")
        assert "executions/{execution}" in malformed.json()["detail"]
        missing = await client.get("/api/executions/01J9Z8Q4T6K3M5N7P9R1S3T5V7/stream")
        assert (missing.status_code, missing.json()["reason"]) == (404, "EXECUTION_NOT_FOUND")
        unknown = await client.post("/api/workflows/nope/execute", json={})
        assert (unknown.status_code, unknown.json()["reason"]) == (404, "WORKFLOW_NOT_FOUND")
        bad_inputs = await client.post("/api/workflows/hello/execute", json={"inputs": {"who": 5}})
        assert bad_inputs.status_code == 400
        assert bad_inputs.json()["reason"] == "INPUT_SCHEMA_VIOLATION"
