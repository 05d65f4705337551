"""gRPC servicers of the scheduler: request in, domain call, response out.

Errors are the domain's ``MaestroError``s, mapped to statuses by the server
interceptor; the caller's identity comes from the call context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from maestro.services.scheduler.listing import Listing
from maestro.services.scheduler.service import Scheduler


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    """``maestro.scheduler.v1.SchedulerService``."""

    def __init__(self, scheduler: Scheduler, listing: Listing) -> None:
        self._scheduler = scheduler
        self._listing = listing

    async def StartExecution(
        self, request: pb.StartExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartExecutionResponse:
        return await self._scheduler.start_execution(request)

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetExecutionResponse:
        return pb.GetExecutionResponse(execution=await self._scheduler.get_execution(request))

    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListExecutionsResponse:
        return await self._listing.list_executions(request)

    async def CancelExecution(
        self, request: pb.CancelExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelExecutionResponse:
        return pb.CancelExecutionResponse(execution=await self._scheduler.cancel_execution(request))

    async def RetryExecution(
        self, request: pb.RetryExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetryExecutionResponse:
        return pb.RetryExecutionResponse(execution=await self._scheduler.retry_execution(request))

    async def CompensateExecution(
        self, request: pb.CompensateExecutionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompensateExecutionResponse:
        return pb.CompensateExecutionResponse(
            execution=await self._scheduler.compensate_execution(request)
        )

    async def StreamExecutionEvents(
        self, request: pb.StreamExecutionEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamExecutionEventsResponse]:
        async for event in self._scheduler.stream_events(request):
            yield pb.StreamExecutionEventsResponse(event=event)

    async def ListExecutionEvents(
        self, request: pb.ListExecutionEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListExecutionEventsResponse:
        return await self._scheduler.list_events(request)

    async def GetHumanTask(
        self, request: pb.GetHumanTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetHumanTaskResponse:
        return pb.GetHumanTaskResponse(human_task=await self._scheduler.get_human_task(request))

    async def ListHumanTasks(
        self, request: pb.ListHumanTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHumanTasksResponse:
        return await self._listing.list_human_tasks(request)

    async def CompleteHumanTask(
        self, request: pb.CompleteHumanTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteHumanTaskResponse:
        return pb.CompleteHumanTaskResponse(
            human_task=await self._scheduler.complete_human_task(request)
        )


class TaskQueueServicer(pb_grpc.TaskQueueServiceServicer):
    """``maestro.scheduler.v1.TaskQueueService``, the worker contract (for
    worker identities only: ``Scheduler.workers``)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    async def PollTasks(
        self, request: pb.PollTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.PollTasksResponse:
        # A worker that gave up on its poll must not be handed leases it will
        # never see (they would only come back after the lease time).
        return pb.PollTasksResponse(
            tasks=await self._scheduler.poll_tasks(request, abandoned=context.cancelled)
        )

    async def HeartbeatTask(
        self, request: pb.HeartbeatTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatTaskResponse:
        return await self._scheduler.heartbeat(request)

    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteTaskResponse:
        await self._scheduler.complete_task(request)
        return pb.CompleteTaskResponse()

    async def FailTask(
        self, request: pb.FailTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.FailTaskResponse:
        return await self._scheduler.fail_task(request)

    async def ReportTasks(
        self, request: pb.ReportTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportTasksResponse:
        return await self._scheduler.report_tasks(request)
