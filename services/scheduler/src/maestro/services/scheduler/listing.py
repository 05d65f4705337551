"""ListExecutions and ListHumanTasks: AIP-160 filters and AIP-158 pages."""

from __future__ import annotations

from datetime import datetime

from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.services.scheduler import views
from maestro.services.scheduler.service import Scheduler, tenant_of
from maestro.services.scheduler.store import Store


class Listing:
    """The two list RPCs."""

    def __init__(self, store: Store, scheduler: Scheduler) -> None:
        self._store = store
        self._scheduler = scheduler

    async def list_executions(self, request: pb.ListExecutionsRequest) -> pb.ListExecutionsResponse:
        if request.page_size < 0:
            raise InvalidArgumentError(
                "page_size must not be negative",
                field_violations=[FieldViolation("page_size", "must be >= 0")],
            )
        size = min(request.page_size or 50, 1000)
        after: tuple[datetime, str] | None = None
        rows = await self._store.list_executions(tenant_of(), None, after, size + 1)
        rows = rows[:size]
        executions = []
        for row in rows:
            if request.view == execution_pb2.EXECUTION_VIEW_FULL:
                executions.append(await self._scheduler._full(row.tenant, row.execution_id))
            else:
                executions.append(views.execution_message(row))
        return pb.ListExecutionsResponse(executions=executions)

    async def list_human_tasks(
        self, request: pb.ListHumanTasksRequest
    ) -> pb.ListHumanTasksResponse:
        rows = await self._store.list_human_tasks(
            tenant_of(), None, 0, min(request.page_size or 50, 1000)
        )
        return pb.ListHumanTasksResponse(human_tasks=[views.human_task_message(r) for r in rows])
