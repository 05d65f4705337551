"""Executor tests: the real executor server against a scripted fake scheduler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from maestro.runtime.clients import ExecutorAdminClient, open_channel
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.runtime.settings import ServiceSettings
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from maestro.services.executor.config import ExecutorSettings
from maestro.services.executor.server import create_server
from tests.unit.executor import sample_handlers
from tests.unit.executor.support import TASK_QUEUE_SERVICE, FakeTaskQueue, HttpTarget, eventually


@dataclass
class Scheduler:
    queue: FakeTaskQueue
    server: GrpcServer

    @property
    def address(self) -> str:
        return self.server.address


@dataclass
class Executor:
    server: GrpcServer
    admin: ExecutorAdminClient

    @property
    def address(self) -> str:
        return self.server.address

    def metric(self, name: str, **labels: str) -> float:
        return self.server.registry.get_sample_value(name, labels) or 0.0

    async def finished(self, handler: str, outcome: str) -> None:
        """Waits until one attempt of ``handler`` ended with ``outcome`` (counted
        after the scheduler answered the report)."""
        await eventually(
            lambda: (
                self.metric("maestro_executor_tasks_total", handler=handler, outcome=outcome) == 1
            )
        )


StartExecutor = Callable[..., Awaitable[Executor]]


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    queue = FakeTaskQueue()
    server = GrpcServer(
        ServiceSpec(
            name="scheduler",
            servicers=[(pb_grpc.add_TaskQueueServiceServicer_to_server, queue)],
            service_names=[TASK_QUEUE_SERVICE],
        ),
        ServiceSettings(port=0, metrics_port=None),
    )
    await server.start()
    try:
        yield Scheduler(queue, server)
    finally:
        await server.stop(0)


@pytest.fixture
async def start_executor(scheduler: Scheduler) -> AsyncIterator[StartExecutor]:
    """Starts executors wired to the fake scheduler; stops them afterwards."""
    started: list[Executor] = []

    async def start(*, tracer_provider: TracerProvider | None = None, **overrides: Any) -> Executor:
        options: dict[str, Any] = {
            "port": 0,
            "metrics_port": None,
            "scheduler_address": scheduler.address,
            "poll_wait_seconds": 1.0,
            "stop_grace_seconds": 0.2,
            "report_retry_seconds": 5.0,
            "readiness_interval_seconds": 30.0,
            "concurrency": 4,
            **overrides,
        }
        server = await create_server(ExecutorSettings(**options), tracer_provider=tracer_provider)
        channel = open_channel(server.address, caller="test", services=ExecutorAdminClient.SERVICES)
        executor = Executor(server, ExecutorAdminClient(channel, timeout=5.0))
        started.append(executor)
        return executor

    try:
        yield start
    finally:
        for executor in reversed(started):
            await executor.server.stop(0)
            await executor.admin.close()


@pytest.fixture
def sample_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Installs ``sample_handlers`` as the distribution ``maestro-test-handlers``."""
    dist = tmp_path / "maestro_test_handlers-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: maestro-test-handlers\nVersion: 0.0.1\n"
    )
    lines = [
        f"{name} = tests.unit.executor.sample_handlers:{attr}"
        for name, attr in sample_handlers.ENTRY_POINTS.items()
    ]
    (dist / "entry_points.txt").write_text("[maestro.handlers]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sample_handlers.CANCELLED_EVENTS.clear()
    yield


@pytest.fixture
async def executor(start_executor: StartExecutor, sample_entry_points: None) -> Executor:
    """An executor with the built-in and the sample handlers."""
    return await start_executor()


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    with HttpTarget().running() as target:
        yield target
