"""REST resources for running workflows: executions, their events (as a paged
list and as a Server-Sent Events stream) and human tasks — each a thin
translation to one scheduler RPC through the typed client.

JSON shapes come from :mod:`maestro.runtime.cloudevents`, shared with the CLI:
executions and human tasks are proto JSON plus their id, events are CloudEvents
1.0. Retry-safe writes take an ``Idempotency-Key`` header as their AIP-155
``request_id``; where the scheduler requires one and the header is absent, the
gateway generates a UUID4 (so that call is not retry-safe for the client).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from maestro.runtime import context, evidence
from maestro.runtime.clients import SchedulerClient, SignerClient
from maestro.runtime.cloudevents import (
    EXECUTION_PREFIX,
    HUMAN_TASK_PREFIX,
    cloudevent,
    execution_json,
    human_task_json,
)
from maestro.runtime.errors import FieldViolation, InvalidArgumentError, MaestroError
from maestro.runtime.status import unexpected_error
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.services.gateway.bodies import duration_value, struct_value
from maestro.services.gateway.filters import execution_filter, human_task_filter
from maestro.services.gateway.models import CompleteHumanTaskBody, ExecuteBody, ReasonBody
from maestro.services.gateway.openapi import problems
from maestro.services.gateway.problems import http_problem
from maestro.services.gateway.sse import HEADERS, KEEPALIVE, MEDIA_TYPE, KeepAliveStream, sse_event
from maestro.services.gateway.workflows import IfMatch, etag_of, http_etag, name_of

log = logging.getLogger("maestro.gateway.executions")

_VIEWS: dict[str, execution_pb2.ExecutionView] = {
    "basic": execution_pb2.EXECUTION_VIEW_BASIC,
    "full": execution_pb2.EXECUTION_VIEW_FULL,
}

ListPageSize = Annotated[
    int,
    Query(alias="pageSize", ge=0, le=1000, description="Results per page; 0 means 50."),
]
EventsPageSize = Annotated[
    int,
    Query(alias="pageSize", ge=0, le=1000, description="Events per page; 0 means 100."),
]
PageToken = Annotated[
    str, Query(alias="pageToken", description="`nextPageToken` of the previous page.")
]
View = Annotated[
    str | None,
    Query(description="`basic` (no step timeline) or `full`; default depends on the route."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A UUID; retries with the same key return the first call's result "
        "(AIP-155). Absent: the gateway generates one, so a retry acts again.",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional UUID; retries with the same key return the first call's "
        "result (AIP-155). The operation is idempotent by nature anyway.",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event `id` (a sequence number); set by "
        "EventSource on reconnect. Wins over `after`.",
    ),
]
StreamAfter = Annotated[
    int | None,
    Query(ge=0, description="Send only events with a larger sequence; default 0 (all)."),
]


def execution_resource(execution_id: str) -> str:
    return f"{EXECUTION_PREFIX}{execution_id}"


def human_task_resource(task_id: str) -> str:
    return f"{HUMAN_TASK_PREFIX}{task_id}"


def request_id_of(idempotency_key: str | None) -> str:
    """The AIP-155 request id of an ``Idempotency-Key`` header; a fresh UUID4
    when it is absent or blank."""
    return (idempotency_key or "").strip() or context.new_request_id()


def execution_view(
    value: str | None, default: execution_pb2.ExecutionView
) -> execution_pb2.ExecutionView:
    """An ExecutionView from ``basic``/``full`` (any case); ``default`` when absent.

    Raises:
        InvalidArgumentError: another value.
    """
    if value is None or not value.strip():
        return default
    view = _VIEWS.get(value.strip().lower())
    if view is None:
        raise InvalidArgumentError(
            f"view must be basic or full, got {value!r}",
            field_violations=[FieldViolation("query.view", "expected `basic` or `full`")],
        )
    return view


def after_sequence(last_event_id: str | None, after: int | None) -> int:
    """``after_sequence`` of a stream: the ``Last-Event-ID`` header (a
    reconnecting EventSource sends it), else ``after``, else 0.

    Raises:
        InvalidArgumentError: the header is not a non-negative integer.
    """
    header = (last_event_id or "").strip()
    if header:
        if not header.isascii() or not header.isdigit():
            raise InvalidArgumentError(
                f"Last-Event-ID must be an event sequence number, got {header!r}",
                field_violations=[
                    FieldViolation("header.Last-Event-ID", "expected a non-negative integer")
                ],
            )
        return int(header)
    return after or 0


def execute_request(
    workflow_id: str, body: ExecuteBody, idempotency_key: str | None
) -> scheduler_pb.StartExecutionRequest:
    """The StartExecution request of ``POST /api/workflows/{id}/execute``."""
    return scheduler_pb.StartExecutionRequest(
        workflow=name_of(workflow_id),
        version=body.version,
        inputs=struct_value(body.inputs),
        request_id=request_id_of(idempotency_key),
        correlation_id=body.correlation_id,
        labels=body.labels,
        timeout=duration_value(body.timeout, "body.timeout"),
    )


def executions_router(
    scheduler: SchedulerClient, signer: SignerClient, *, keepalive_seconds: float
) -> APIRouter:
    """Routes under ``/api/executions`` and ``/api/human-tasks``, and
    ``POST /api/workflows/{id}/execute``."""
    router = APIRouter(prefix="/api")
    _add_execution_routes(router, scheduler)
    _add_evidence_route(router, scheduler, signer)
    _add_event_routes(router, scheduler, keepalive_seconds)
    _add_human_task_routes(router, scheduler)
    return router


def _execution_response(execution: execution_pb2.Execution) -> JSONResponse:
    return JSONResponse(execution_json(execution), headers=http_etag(execution.etag))


def _add_execution_routes(router: APIRouter, scheduler: SchedulerClient) -> None:
    @router.post(
        "/workflows/{id}/execute",
        status_code=202,
        tags=["executions"],
        summary="Start an execution of a published workflow version.",
        description="Always 202 Accepted with the execution, also when the "
        "`Idempotency-Key` repeats an earlier call (AIP-155: the same response; "
        "`created` is then false). `Location` names the execution.",
        responses={
            202: {"description": "`{executionId, created, execution}`; `Location` header."},
            **problems(400, 403, 404, 409, 413, 503),
        },
    )
    async def execute_workflow(
        id: str,
        body: Annotated[ExecuteBody | None, Body()] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await scheduler.start_execution(
            execute_request(id, body or ExecuteBody(), idempotency_key)
        )
        execution = execution_json(reply.execution)
        return JSONResponse(
            {
                "executionId": execution["executionId"],
                "created": reply.created,
                "execution": execution,
            },
            status_code=202,
            headers={
                "Location": f"/api/executions/{execution['executionId']}",
                **http_etag(reply.execution.etag),
            },
        )

    @router.get(
        "/executions",
        tags=["executions"],
        summary="List executions, newest first (basic view unless `view=full`).",
        responses=problems(400, 403, 503),
    )
    async def list_executions(
        *,
        status: Annotated[
            list[str] | None,
            Query(
                description="State, e.g. `RUNNING` (any of: repeat the parameter or "
                "separate with commas)."
            ),
        ] = None,
        workflow_id: Annotated[
            str | None, Query(alias="workflowId", description="Workflow id.")
        ] = None,
        started_after: Annotated[
            datetime | None,
            Query(alias="startedAfter", description="Started at or after (RFC 3339)."),
        ] = None,
        tenant: Annotated[str | None, Query(description="Tenant (among those readable).")] = None,
        filter_: Annotated[
            str | None, Query(alias="filter", description="A further AIP-160 filter.")
        ] = None,
        page_size: ListPageSize = 0,
        page_token: PageToken = "",
        view: View = None,
    ) -> dict[str, Any]:
        reply = await scheduler.list_executions(
            scheduler_pb.ListExecutionsRequest(
                page_size=page_size,
                page_token=page_token,
                filter=execution_filter(
                    states=status or (),
                    workflow=workflow_id,
                    started_after=started_after,
                    tenant=tenant,
                    extra=filter_,
                    states_field="query.status",
                ),
                view=execution_view(view, execution_pb2.EXECUTION_VIEW_BASIC),
            )
        )
        return {
            "executions": [execution_json(e) for e in reply.executions],
            "nextPageToken": reply.next_page_token,
        }

    @router.get(
        "/executions/{id}",
        tags=["executions"],
        summary="Read an execution with its step timeline (attempts, durations).",
        responses=problems(400, 403, 404, 503),
    )
    async def get_execution(id: str, view: View = None) -> JSONResponse:
        reply = await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(
                name=execution_resource(id),
                view=execution_view(view, execution_pb2.EXECUTION_VIEW_FULL),
            )
        )
        return _execution_response(reply.execution)

    @router.post(
        "/executions/{id}/cancel",
        tags=["executions"],
        summary="Request cancellation (CANCELLING, then CANCELLED once nothing runs).",
        description="Cancelling a CANCELLING or CANCELLED execution returns it unchanged; "
        "a finished one is refused (400 `EXECUTION_STATE_CONFLICT`).",
        responses=problems(400, 403, 404, 409, 503),
    )
    async def cancel_execution(
        id: str,
        body: Annotated[ReasonBody | None, Body()] = None,
        if_match: IfMatch = None,
        idempotency_key: OptionalIdempotencyKey = None,
    ) -> JSONResponse:
        reply = await scheduler.cancel_execution(
            scheduler_pb.CancelExecutionRequest(
                name=execution_resource(id),
                reason=(body or ReasonBody()).reason,
                request_id=idempotency_key or "",
                etag=etag_of(if_match),
            )
        )
        return _execution_response(reply.execution)

    @router.post(
        "/executions/{id}/retry",
        tags=["executions"],
        summary="Resume a FAILED, CANCELLED or TIMED_OUT execution in place.",
        description="Succeeded steps keep their outputs; failed, timed-out, cancelled and "
        "skipped steps run again with a fresh retry budget.",
        responses=problems(400, 403, 404, 409, 503),
    )
    async def retry_execution(
        id: str,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await scheduler.retry_execution(
            scheduler_pb.RetryExecutionRequest(
                name=execution_resource(id),
                request_id=request_id_of(idempotency_key),
                etag=etag_of(if_match),
            )
        )
        return _execution_response(reply.execution)

    @router.post(
        "/executions/{id}/compensate",
        tags=["executions"],
        summary="Run the saga: compensate the succeeded steps in reverse order.",
        responses=problems(400, 403, 404, 409, 503),
    )
    async def compensate_execution(
        id: str,
        body: Annotated[ReasonBody | None, Body()] = None,
        if_match: IfMatch = None,
        idempotency_key: OptionalIdempotencyKey = None,
    ) -> JSONResponse:
        reply = await scheduler.compensate_execution(
            scheduler_pb.CompensateExecutionRequest(
                name=execution_resource(id),
                reason=(body or ReasonBody()).reason,
                request_id=idempotency_key or "",
                etag=etag_of(if_match),
            )
        )
        return _execution_response(reply.execution)


_STREAM_DESCRIPTION = """\
Server-Sent Events (`text/event-stream`), one per journaled event, in sequence
order: first the events after `Last-Event-ID` (or `after`), then new ones as they
happen. Each is

```
id: <sequence>
event: <CloudEvents type, e.g. dev.maestro.step.succeeded>
data: <the CloudEvents 1.0 JSON event>
```

with extension attributes `executionid`, `sequence` (zero-padded) and `attempt`.
The response ends after the event that makes the execution terminal (with
`follow=false`: after the last journaled event); an EventSource reconnects with
`Last-Event-ID` and resumes without gaps. A `: keep-alive` comment is sent while
idle. A failure after the stream started is sent as `event: error` with an RFC
9457 problem as data, then the response ends.
"""


_BINARY = {"type": "string", "format": "binary"}


def _add_evidence_route(
    router: APIRouter, scheduler: SchedulerClient, signer: SignerClient
) -> None:
    @router.get(
        "/executions/{id}/evidence",
        tags=["executions"],
        summary="Download the execution's evidence bundle (.tar.gz).",
        description="The signed evidence of a finished execution: its receipt and the "
        "receipt of the published version that ran, their inclusion proofs, the signed "
        "checkpoint they are proven against, the public keys and a signed manifest of it "
        "all. Verify it offline with `maestro verify FILE`. `Repr-Digest` carries the "
        "bundle's SHA-256 (RFC 9530), `X-Maestro-Receipts` the receipts inside. An "
        "execution that has not finished, or whose receipt is still being signed, is "
        "409 `RECEIPT_PENDING` (with `Retry-After` once it has finished).",
        response_class=Response,
        responses={
            200: {
                "description": "The bundle.",
                "content": {
                    evidence.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
                },
            },
            **problems(400, 403, 404, 409, 503),
        },
    )
    async def get_execution_evidence(id: str) -> Response:
        exported = await evidence.execution_evidence(scheduler, signer, execution_resource(id))
        digest = base64.b64encode(bytes.fromhex(exported.bundle_digest)).decode()
        return Response(
            exported.bundle,
            media_type=evidence.MEDIA_TYPE,
            headers={
                "Content-Disposition": f'attachment; filename="{id}.evidence.tar.gz"',
                "Repr-Digest": f"sha-256=:{digest}:",
                "X-Maestro-Receipts": ",".join(exported.receipts),
            },
        )


def _add_event_routes(router: APIRouter, scheduler: SchedulerClient, keepalive: float) -> None:
    @router.get(
        "/executions/{id}/events",
        tags=["events"],
        summary="List an execution's events (CloudEvents 1.0 JSON), oldest first.",
        responses=problems(400, 403, 404, 503),
    )
    async def list_execution_events(
        id: str,
        page_size: EventsPageSize = 0,
        page_token: PageToken = "",
        after: Annotated[int, Query(ge=0, description="Only events with a larger sequence.")] = 0,
    ) -> dict[str, Any]:
        reply = await scheduler.list_execution_events(
            scheduler_pb.ListExecutionEventsRequest(
                name=execution_resource(id),
                page_size=page_size,
                page_token=page_token,
                after_sequence=after,
            )
        )
        return {
            "events": [cloudevent(e) for e in reply.events],
            "nextPageToken": reply.next_page_token,
        }

    @router.get(
        "/executions/{id}/stream",
        tags=["events"],
        summary="Stream an execution's events as Server-Sent Events (resumable).",
        description=_STREAM_DESCRIPTION,
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "The event stream.",
                "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
            },
            **problems(400, 403, 404, 503),
        },
    )
    async def stream_execution_events(
        id: str,
        request: Request,
        last_event_id: LastEventId = None,
        after: StreamAfter = None,
        follow: Annotated[
            bool, Query(description="Keep streaming new events until the execution ends.")
        ] = True,
    ) -> StreamingResponse:
        name = execution_resource(id)
        start = after_sequence(last_event_id, after)
        # Errors the stream would report (malformed name, not found, denied)
        # become a proper problem response while the status can still change.
        await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(name=name, view=execution_pb2.EXECUTION_VIEW_BASIC)
        )
        stream = KeepAliveStream(
            scheduler.stream_execution_events(
                scheduler_pb.StreamExecutionEventsRequest(
                    name=name, after_sequence=start, follow=follow
                ),
                timeout=None,
            ),
            keepalive,
        )
        return StreamingResponse(
            _sse_body(stream, instance=request.url.path),
            media_type=MEDIA_TYPE,
            headers=HEADERS,
            # Runs however the response ends, client disconnect included.
            background=BackgroundTask(stream.close),
        )


async def _sse_body(
    stream: KeepAliveStream[scheduler_pb.StreamExecutionEventsResponse], *, instance: str
) -> AsyncIterator[str]:
    error: MaestroError | None = None
    try:
        async for item in stream:
            if item is None:
                yield KEEPALIVE
                continue
            event = cloudevent(item.event)
            yield sse_event(
                json.dumps(event, separators=(",", ":")),
                event=event["type"],
                event_id=str(item.event.sequence),
            )
    except MaestroError as exc:
        error = exc
    except Exception:
        log.exception("event stream of %s failed", instance)
        error = unexpected_error()
    finally:
        stream.close()
    if error is not None:
        _, body = http_problem(error, instance=instance, request_id=context.current().request_id)
        yield sse_event(json.dumps(body, separators=(",", ":")), event="error")


def _add_human_task_routes(router: APIRouter, scheduler: SchedulerClient) -> None:
    @router.get(
        "/human-tasks",
        tags=["human tasks"],
        summary="List human tasks, by due time then creation.",
        responses=problems(400, 403, 503),
    )
    async def list_human_tasks(
        *,
        state: Annotated[
            list[str] | None,
            Query(description="State, e.g. `OPEN` (repeat or separate with commas for any of)."),
        ] = None,
        execution_id: Annotated[
            str | None, Query(alias="executionId", description="Of this execution.")
        ] = None,
        step_id: Annotated[str | None, Query(alias="stepId", description="Of this step.")] = None,
        assignee: Annotated[
            str | None, Query(description="Lists this assignee: a subject or `role:<name>`.")
        ] = None,
        assigned_to_me: Annotated[
            bool,
            Query(alias="assignedToMe", description="Only tasks the caller may complete."),
        ] = False,
        filter_: Annotated[
            str | None, Query(alias="filter", description="A further AIP-160 filter.")
        ] = None,
        page_size: ListPageSize = 0,
        page_token: PageToken = "",
    ) -> dict[str, Any]:
        reply = await scheduler.list_human_tasks(
            scheduler_pb.ListHumanTasksRequest(
                page_size=page_size,
                page_token=page_token,
                filter=human_task_filter(
                    states=state or (),
                    execution=execution_id,
                    step_id=step_id,
                    assignee=assignee,
                    extra=filter_,
                    states_field="query.state",
                ),
                assigned_to_caller=assigned_to_me,
            )
        )
        return {
            "humanTasks": [human_task_json(t) for t in reply.human_tasks],
            "nextPageToken": reply.next_page_token,
        }

    @router.get(
        "/human-tasks/{id}",
        tags=["human tasks"],
        summary="Read a human task: its form schema, assignees and state.",
        responses=problems(400, 403, 404, 503),
    )
    async def get_human_task(id: str) -> JSONResponse:
        reply = await scheduler.get_human_task(
            scheduler_pb.GetHumanTaskRequest(name=human_task_resource(id))
        )
        return JSONResponse(
            human_task_json(reply.human_task), headers=http_etag(reply.human_task.etag)
        )

    @router.post(
        "/human-tasks/{id}/complete",
        tags=["human tasks"],
        summary="Complete an open human task with the submitted form.",
        description="The HUMAN step then succeeds with `result` as its output. Only an "
        "assignee may complete it (`POLICY_DENIED`).",
        responses=problems(400, 403, 404, 409, 503),
    )
    async def complete_human_task(
        id: str,
        body: CompleteHumanTaskBody,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await scheduler.complete_human_task(
            scheduler_pb.CompleteHumanTaskRequest(
                name=human_task_resource(id),
                result=struct_value(body.result),
                request_id=request_id_of(idempotency_key),
                etag=etag_of(if_match),
            )
        )
        return JSONResponse(
            human_task_json(reply.human_task), headers=http_etag(reply.human_task.etag)
        )
