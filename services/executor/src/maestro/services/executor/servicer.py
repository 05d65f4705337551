"""gRPC servicer of the executor's admin API: proto <-> worker, nothing else.

Errors are the domain's ``MaestroError``s, mapped to statuses by the server
interceptor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from maestro.executor.v1 import executor_service_pb2 as pb
from maestro.executor.v1 import executor_service_pb2_grpc as pb_grpc
from maestro.executor.v1 import worker_pb2
from maestro.runtime.timestamps import timestamp
from maestro.services.executor.handlers.api import HandlerSource, HandlerSpec
from maestro.services.executor.worker import InFlightTask, Worker, WorkerStatus

_SOURCES = {
    HandlerSource.BUILTIN: worker_pb2.HANDLER_SOURCE_BUILTIN,
    HandlerSource.ENTRY_POINT: worker_pb2.HANDLER_SOURCE_ENTRY_POINT,
}


def handler_to_proto(spec: HandlerSpec) -> worker_pb2.Handler:
    message = worker_pb2.Handler(
        name=spec.name,
        description=spec.description,
        source=_SOURCES[spec.source],
        entry_point=spec.entry_point,
        distribution=spec.distribution,
    )
    if spec.config_schema:
        message.config_schema.update(spec.config_schema)
    return message


def in_flight_to_proto(task: InFlightTask) -> worker_pb2.InFlightTask:
    return worker_pb2.InFlightTask(
        task_id=task.task_id,
        execution=task.execution,
        step_id=task.step_id,
        attempt=task.attempt,
        handler=task.handler,
        task_queue=task.task_queue,
        start_time=timestamp(task.start_time),
        lease_expire_time=timestamp(task.lease_expire_time),
        cancel_requested=task.cancel_requested,
    )


def status_to_proto(status: WorkerStatus) -> worker_pb2.WorkerStatus:
    return worker_pb2.WorkerStatus(
        identity=status.identity,
        version=status.version,
        task_queues=status.task_queues,
        concurrency_limit=status.concurrency,
        in_flight_tasks=[in_flight_to_proto(t) for t in status.in_flight],
        completed_total=status.completed_total,
        failed_total=status.failed_total,
        lease_lost_total=status.lease_lost_total,
        draining=status.draining,
        start_time=timestamp(status.start_time),
        drain_time=timestamp(status.drain_time),
    )


class ExecutorAdminServicer(pb_grpc.ExecutorAdminServiceServicer):
    """Serves ``maestro.executor.v1.ExecutorAdminService`` for this process.

    ``on_drain`` runs after draining began (the server re-checks readiness
    there, so health turns NOT_SERVING before DrainWorker returns).
    """

    def __init__(
        self,
        worker: Worker,
        *,
        on_drain: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._worker = worker
        self._on_drain = on_drain

    async def GetWorkerStatus(
        self, request: pb.GetWorkerStatusRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.GetWorkerStatusResponse:
        return pb.GetWorkerStatusResponse(status=status_to_proto(self._worker.status()))

    async def ListHandlers(
        self, request: pb.ListHandlersRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.ListHandlersResponse:
        page = self._worker.handlers.list_handlers(
            page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListHandlersResponse(
            handlers=[handler_to_proto(spec) for spec in page.items],
            next_page_token=page.next_page_token,
        )

    async def DrainWorker(
        self, request: pb.DrainWorkerRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.DrainWorkerResponse:
        status = await self._worker.drain(request.reason)
        if self._on_drain is not None:
            await self._on_drain()
        return pb.DrainWorkerResponse(status=status_to_proto(status))
