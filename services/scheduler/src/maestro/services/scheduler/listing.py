"""ListExecutions and ListHumanTasks: AIP-160 filters and AIP-158 pages.

Executions are keyset-paginated on ``(create_time, id)`` newest first; human
tasks by offset in (due_time, create_time, id) order. Page tokens are bound to
the tenant, filter and view they came from.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false

from maestro.runtime import context, paging
from maestro.runtime.filtering import Field, MapField, compile_filter
from maestro.runtime.policy import Action
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.services.scheduler import views
from maestro.services.scheduler.service import (
    Scheduler,
    parse_execution_name,
    parse_workflow,
    tenant_of,
)
from maestro.services.scheduler.store import Store, executions, human_tasks, utc

MAX_PAGE_SIZE = 1000


def _enum_names(enum: Any, prefix: str) -> dict[str, int]:
    names: dict[str, int] = {}
    for name, number in enum.items():
        if number:
            names[name] = number
            names[name.removeprefix(prefix)] = number
    return names


def _labels(key: str, op: str, value: str) -> ColumnElement[bool]:
    # Labels are stored as compact JSON with sorted keys; a key/value pair is
    # the exact text `"key":"value"` within it.
    needle = json.dumps({key: value}, separators=(",", ":"))[1:-1]
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matched = executions.c.labels.like(pattern, escape="\\")
    return matched if op == "=" else ~matched


def _workflow(_: str, value: Any) -> ColumnElement[bool]:
    text = str(value)
    workflow_id = parse_workflow(text) if "/" in text else text
    return executions.c.workflow_id == workflow_id


def _execution_ref(column: ColumnElement[str]) -> Any:
    def build(_: str, value: Any) -> ColumnElement[bool]:
        text = str(value)
        return column == (parse_execution_name(text) if text.startswith("executions/") else text)

    return build


EXECUTION_FIELDS: dict[str, Field | MapField] = {
    "state": Field(
        "enum",
        executions.c.state,
        enum_values=_enum_names(execution_pb2.ExecutionState, "EXECUTION_STATE_"),
    ),
    "workflow": Field("string", build=_workflow, ops=frozenset({"="})),
    "version": Field("string", executions.c.version),
    "tenant": Field("string", executions.c.tenant),
    "create_time": Field("timestamp", executions.c.create_time),
    "start_time": Field("timestamp", executions.c.start_time),
    "end_time": Field("timestamp", executions.c.end_time),
    "correlation_id": Field("string", executions.c.correlation_id),
    "parent_execution": Field(
        "string", build=_execution_ref(executions.c.parent_execution_id), ops=frozenset({"="})
    ),
    "labels": MapField(build=_labels),
}


def _assignee(_: str, value: Any) -> ColumnElement[bool]:
    needle = json.dumps(str(value))
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return human_tasks.c.assignees.like(pattern, escape="\\")


HUMAN_TASK_FIELDS: dict[str, Field | MapField] = {
    "state": Field(
        "enum",
        human_tasks.c.state,
        enum_values=_enum_names(execution_pb2.HumanTaskState, "HUMAN_TASK_STATE_"),
    ),
    "execution": Field(
        "string", build=_execution_ref(human_tasks.c.execution_id), ops=frozenset({"="})
    ),
    "step_id": Field("string", human_tasks.c.step_id),
    "assignees": Field("string", build=_assignee, ops=frozenset({":", "="})),
    "due_time": Field("timestamp", human_tasks.c.due_time),
    "create_time": Field("timestamp", human_tasks.c.create_time),
}


class Listing:
    """The two list RPCs."""

    def __init__(self, store: Store, scheduler: Scheduler) -> None:
        self._store = store
        self._scheduler = scheduler

    async def list_executions(self, request: pb.ListExecutionsRequest) -> pb.ListExecutionsResponse:
        size = paging.page_size(request.page_size, default=50, maximum=MAX_PAGE_SIZE)
        tenant = tenant_of()
        where = compile_filter(request.filter, EXECUTION_FIELDS)
        query = paging.query_hash("executions", tenant, request.filter, request.view)
        after: tuple[datetime, str] | None = None
        if request.page_token:
            key = paging.decode_page_token(request.page_token, query)
            try:
                created = utc(datetime.fromisoformat(str(key[0])))
                assert created is not None
                after = (created, str(key[1]))
            except (ValueError, IndexError, AssertionError) as exc:
                raise paging.bad_page_token() from exc
        await self._scheduler.authorize_collection(Action.EXECUTION_READ, "executions/-")
        rows = await self._store.list_executions(tenant, where, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        token_row = rows[-1] if more and rows else None
        rows = await self._scheduler.readable_rows(rows)
        found = []
        for row in rows:
            if request.view == execution_pb2.EXECUTION_VIEW_FULL:
                found.append(await self._scheduler.full_view(row.tenant, row.execution_id))
            else:
                found.append(views.execution_message(row))
        token = ""
        if token_row is not None:  # the page's last row, whether the caller may read it or not
            token = paging.encode_page_token(
                [token_row.create_time.isoformat(), token_row.execution_id], query
            )
        return pb.ListExecutionsResponse(executions=found, next_page_token=token)

    async def list_human_tasks(
        self, request: pb.ListHumanTasksRequest
    ) -> pb.ListHumanTasksResponse:
        size = paging.page_size(request.page_size, default=50, maximum=MAX_PAGE_SIZE)
        tenant = tenant_of()
        where = compile_filter(request.filter, HUMAN_TASK_FIELDS)
        if request.assigned_to_caller:
            mine = _assigned_to_caller()
            where = mine if where is None else and_(where, mine)
        query = paging.query_hash("humanTasks", tenant, request.filter, request.assigned_to_caller)
        offset = 0
        if request.page_token:
            key = paging.decode_page_token(request.page_token, query)
            if not key or not isinstance(key[0], int) or key[0] < 0:
                raise paging.bad_page_token()
            offset = key[0]
        await self._scheduler.authorize_collection(Action.EXECUTION_READ, "humanTasks/-")
        rows = await self._store.list_human_tasks(tenant, where, offset, size + 1)
        more = len(rows) > size
        rows = await self._scheduler.readable_tasks(rows[:size])
        token = paging.encode_page_token([offset + size], query) if more else ""
        return pb.ListHumanTasksResponse(
            human_tasks=[views.human_task_message(r) for r in rows], next_page_token=token
        )


def _assigned_to_caller() -> ColumnElement[bool]:
    principal = context.current().principal
    entries = [principal.subject, *(f"role:{r}" for r in principal.roles)]
    conditions = [_assignee("", e) for e in entries if e and e != "role:"]
    if not conditions:
        return false()
    clause = conditions[0]
    for condition in conditions[1:]:
        clause = clause | condition
    return clause
