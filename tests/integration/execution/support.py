"""An execution mesh in this process: compiler, registry, scheduler and
executors on free loopback ports, over the embedded backend (SQLite + the SQL
task table) or the production one (PostgreSQL + Redis Streams)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2

from maestro.common.v1 import source_pb2
from maestro.registry.v1 import registry_service_pb2 as rpb
from maestro.runtime.clients import (
    RegistryClient,
    SchedulerClient,
    TaskQueueClient,
    open_channel,
)
from maestro.runtime.server import GrpcServer
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as spb
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.executor.config import ExecutorSettings
from maestro.services.executor.server import create_server as create_executor
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.server import create_server as create_scheduler
from tests.conftest import start_policy, start_signer
from tests.devgateway import DevGateway, dev_gateway

X = execution_pb2.ExecutionState
TERMINAL = frozenset(
    {X.EXECUTION_STATE_SUCCEEDED, X.EXECUTION_STATE_FAILED, X.EXECUTION_STATE_CANCELLED,
     X.EXECUTION_STATE_TIMED_OUT, X.EXECUTION_STATE_COMPENSATED}
)  # fmt: skip
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "workflows"


@dataclass(frozen=True)
class Backend:
    """Where the scheduler keeps its journal and how it dispatches."""

    name: str
    database_url: str = ""
    redis_url: str = ""

    def scheduler_settings(self) -> dict[str, Any]:
        if not self.redis_url:
            return {"database_url": self.database_url, "dispatch": "sql"}
        return {
            "database_url": self.database_url,
            "dispatch": "redis",
            "redis_url": self.redis_url,
        }


@dataclass
class Mesh:
    """Running servers and clients; see :func:`execution_mesh`."""

    backend: Backend
    data_dir: Path
    compiler: GrpcServer
    registry: GrpcServer
    scheduler: GrpcServer
    registry_client: RegistryClient
    scheduler_client: SchedulerClient
    tasks: TaskQueueClient
    scheduler_options: dict[str, Any]
    executors: list[GrpcServer] = field(default_factory=list)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    signer_server: GrpcServer | None = None
    """The signer; None in rigs that run none (the crash test's)."""

    @property
    def signer(self) -> GrpcServer:
        if self.signer_server is None:
            raise AssertionError("this mesh runs no signer")
        return self.signer_server

    @property
    def scheduler_address(self) -> str:
        return f"127.0.0.1:{self.scheduler.port}"

    def gateway(self, data_dir: Path) -> AbstractAsyncContextManager[DevGateway]:
        """A dev-mode gateway in front of this mesh (its first executor, and
        its signer when it runs one)."""
        addresses = {
            "compiler": f"127.0.0.1:{self.compiler.port}",
            "registry": f"127.0.0.1:{self.registry.port}",
            "scheduler": self.scheduler_address,
            "executor": f"127.0.0.1:{self.executors[0].port}",
            "policy": self.scheduler_options["policy_address"],
        }
        if self.signer_server is not None:
            addresses["signer"] = f"127.0.0.1:{self.signer_server.port}"
        return dev_gateway(data_dir, **addresses)

    async def publish(self, source: str | bytes, workflow_id: str) -> str:
        """Creates and publishes a workflow; returns ``workflows/{id}``."""
        content = source.encode() if isinstance(source, str) else source
        await self.registry_client.create_workflow(
            rpb.CreateWorkflowRequest(
                source=source_pb2.WorkflowSource(content=content),
                workflow_id=workflow_id,
                request_id=str(uuid.uuid4()),
            )
        )
        await self.registry_client.publish_workflow(
            rpb.PublishWorkflowRequest(
                name=f"workflows/{workflow_id}", request_id=str(uuid.uuid4())
            )
        )
        return f"workflows/{workflow_id}"

    async def start(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        version: str = "",
    ) -> execution_pb2.Execution:
        request = spb.StartExecutionRequest(
            workflow=workflow if "/" in workflow else f"workflows/{workflow}",
            request_id=request_id or str(uuid.uuid4()),
            version=version,
        )
        if inputs:
            request.inputs.update(dict(inputs))
        if timeout is not None:
            request.timeout.FromTimedelta(__import__("datetime").timedelta(seconds=timeout))
        response = await self.scheduler_client.start_execution(request)
        return response.execution

    async def get(self, name: str) -> execution_pb2.Execution:
        response = await self.scheduler_client.get_execution(spb.GetExecutionRequest(name=name))
        return response.execution

    async def wait(
        self, name: str, *, states: frozenset[int] = TERMINAL, timeout: float = 30.0
    ) -> execution_pb2.Execution:
        """Polls until the execution is in one of ``states``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            execution = await self.get(name)
            if execution.state in states:
                return execution
            if loop.time() > deadline:
                raise AssertionError(
                    f"{name} still {X.Name(execution.state)} after {timeout}s:\n{execution}"
                )
            await asyncio.sleep(0.05)

    async def wait_step(
        self, name: str, step_id: str, state: int, *, timeout: float = 30.0
    ) -> execution_pb2.StepRun:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            execution = await self.get(name)
            for step in execution.steps:
                if step.step_id == step_id and step.state == state:
                    return step
            if loop.time() > deadline:
                raise AssertionError(f"{name}/{step_id} never reached {state}:\n{execution}")
            await asyncio.sleep(0.05)

    async def run(
        self, workflow: str, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> execution_pb2.Execution:
        execution = await self.start(workflow, inputs, **kwargs)
        return await self.wait(execution.name)

    async def start_executor(self, **overrides: Any) -> GrpcServer:
        options: dict[str, Any] = {
            "port": 0,
            "metrics_port": None,
            "scheduler_address": self.scheduler_address,
            "task_queues": ("default", "batch"),
            "poll_wait_seconds": 1.0,
            "stop_grace_seconds": 0.2,
            "report_retry_seconds": 10.0,
            "concurrency": 16,
            **overrides,
        }
        server = await create_executor(ExecutorSettings(**options))
        self.executors.append(server)
        return server

    async def stop_executor(self, server: GrpcServer) -> None:
        self.executors.remove(server)
        await server.stop(0)

    async def events(self, name: str, after: int = 0) -> list[execution_pb2.ExecutionEvent]:
        stream = self.scheduler_client.stream_execution_events(
            spb.StreamExecutionEventsRequest(name=name, after_sequence=after), timeout=10
        )
        return [item.event async for item in stream]

    async def poll(self, queue: str = "default", *, wait: float = 2.0, max_tasks: int = 10) -> Any:
        """Leases tasks as a hand-driven worker (for protocol tests)."""
        response = await self.tasks.poll_tasks(
            spb.PollTasksRequest(
                task_queue=queue,
                worker_identity="test-worker",
                max_tasks=max_tasks,
                wait=duration_pb2.Duration(seconds=int(wait), nanos=int(wait % 1 * 1e9)),
            ),
            timeout=wait + 5,
        )
        return list(response.tasks)


@asynccontextmanager
async def execution_mesh(
    backend: Backend, data_dir: Path, *, executor: bool = True, **scheduler: Any
) -> AsyncIterator[Mesh]:
    """Starts the mesh (and one executor unless told not to); stops it all."""
    async with AsyncExitStack() as stack:
        policy = await start_policy(data_dir)
        stack.push_async_callback(policy.stop, 0)
        signer = await start_signer(data_dir, f"127.0.0.1:{policy.port}")
        stack.push_async_callback(signer.stop, 0)
        compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
        stack.push_async_callback(compiler.stop, 0)
        registry = await create_registry(
            RegistrySettings(
                port=0,
                metrics_port=None,
                data_dir=data_dir,
                compiler_address=f"127.0.0.1:{compiler.port}",
                policy_address=f"127.0.0.1:{policy.port}",
                signer_address=f"127.0.0.1:{signer.port}",
            )
        )
        stack.push_async_callback(registry.stop, 0)
        options: dict[str, Any] = {
            "port": 0,
            "metrics_port": None,
            "data_dir": data_dir,
            "registry_address": f"127.0.0.1:{registry.port}",
            "policy_address": f"127.0.0.1:{policy.port}",
            "signer_address": f"127.0.0.1:{signer.port}",
            "lease_seconds": 2.0,
            "timer_interval_seconds": 0.05,
            **backend.scheduler_settings(),
            **scheduler,
        }
        scheduler_server = await create_scheduler(SchedulerSettings(**options))
        stack.push_async_callback(scheduler_server.stop, 0)
        address = f"127.0.0.1:{scheduler_server.port}"
        registry_channel = open_channel(
            f"127.0.0.1:{registry.port}", caller="tests", services=RegistryClient.SERVICES
        )
        stack.push_async_callback(registry_channel.close)
        scheduler_channel = open_channel(address, caller="tests", services=SchedulerClient.SERVICES)
        stack.push_async_callback(scheduler_channel.close)
        # Protocol tests drive tasks by hand, as the executor's identity would.
        worker_channel = open_channel(address, caller="executor", services=TaskQueueClient.SERVICES)
        stack.push_async_callback(worker_channel.close)
        mesh = Mesh(
            backend=backend,
            data_dir=data_dir,
            compiler=compiler,
            registry=registry,
            scheduler=scheduler_server,
            signer_server=signer,
            registry_client=RegistryClient(registry_channel, timeout=15),
            scheduler_client=SchedulerClient(scheduler_channel, timeout=15),
            tasks=TaskQueueClient(worker_channel, timeout=15),
            scheduler_options=options,
        )

        async def stop_executors() -> None:
            for server in list(mesh.executors):
                await server.stop(0)

        stack.push_async_callback(stop_executors)
        if executor:
            await mesh.start_executor()
        yield mesh
