"""Crash safety: SIGKILL the executor (several times, with steps in flight)
and the scheduler, restart them, and check the promises hold.

20 executions of a three-step workflow whose middle step POSTs to a local sink
that records each request's ``Idempotency-Key`` and applies each key's effect
once. Executor and scheduler run as real processes (``python -m ...``); the
compiler, registry and sink run in the test process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from maestro.runtime.clients import RegistryClient, SchedulerClient, open_channel
from maestro.runtime.server import GrpcServer
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.conftest import start_policy
from tests.integration.execution.processes import ServiceProcess
from tests.integration.execution.sink import Sink, running_sink
from tests.integration.execution.support import TERMINAL, Backend, Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
X = execution_pb2.ExecutionState
S = execution_pb2.StepState
A = execution_pb2.AttemptState
E = execution_pb2.EventType
LEASE_SECONDS = 2.0
EXECUTIONS = 20


def workflow(sink_url: str) -> str:
    return f"""
name: payments
inputSchema: {{type: object, properties: {{n: {{type: integer}}}}}}
steps:
  - {{id: prepare, type: task, handler: echo, timeout: 10s, input: {{n: inputs.n}}}}
  - id: charge
    type: task
    handler: http
    needs: [prepare]
    config: {{url: "{sink_url}/record?delay=0.6", method: POST}}
    input: {{body: steps.prepare.output}}
    timeout: 20s
  - {{id: receipt, type: task, handler: echo, needs: [charge], timeout: 10s,
     input: {{charged: steps.charge.output.body.applied}}}}
"""


class CrashRig:
    """In-process compiler and registry; scheduler and executors as processes."""

    def __init__(
        self, backend: Backend, root: Path, registry: GrpcServer, policy: GrpcServer
    ) -> None:
        self.root = root
        self.registry = registry
        settings = {
            "MAESTRO_SCHEDULER_DATA_DIR": str(root),
            "MAESTRO_SCHEDULER_REGISTRY_ADDRESS": f"127.0.0.1:{registry.port}",
            "MAESTRO_SCHEDULER_POLICY_ADDRESS": f"127.0.0.1:{policy.port}",
            "MAESTRO_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
            "MAESTRO_SCHEDULER_TIMER_INTERVAL_SECONDS": "0.1",
            "MAESTRO_SCHEDULER_DISPATCH": "redis" if backend.redis_url else "sql",
            "MAESTRO_SCHEDULER_DATABASE_URL": backend.database_url,
            "MAESTRO_SCHEDULER_REDIS_URL": backend.redis_url,
        }
        self.scheduler = ServiceProcess("scheduler", settings, root / "scheduler.log")
        self.executors: list[ServiceProcess] = []

    def executor(self, name: str) -> ServiceProcess:
        process = ServiceProcess(
            "executor",
            {
                "MAESTRO_EXECUTOR_SCHEDULER_ADDRESS": self.scheduler.address,
                "MAESTRO_EXECUTOR_CONCURRENCY": "8",
                "MAESTRO_EXECUTOR_POLL_WAIT_SECONDS": "1",
                "MAESTRO_EXECUTOR_IDENTITY": name,
                "MAESTRO_EXECUTOR_REPORT_RETRY_SECONDS": "60",
            },
            self.root / f"{name}.log",
        )
        self.executors.append(process)
        return process

    def stop(self) -> None:
        for process in [*self.executors, self.scheduler]:
            process.stop()


@pytest.fixture
async def rig(backend: Backend, tmp_path: Path) -> AsyncIterator[tuple[CrashRig, Mesh]]:
    policy = await start_policy(tmp_path)
    compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path,
            compiler_address=f"127.0.0.1:{compiler.port}",
            policy_address=f"127.0.0.1:{policy.port}",
        )
    )
    rig = CrashRig(backend, tmp_path, registry, policy)
    rig.scheduler.start()
    registry_channel = open_channel(
        f"127.0.0.1:{registry.port}", caller="tests", services=RegistryClient.SERVICES
    )
    scheduler_channel = open_channel(
        rig.scheduler.address, caller="tests", services=SchedulerClient.SERVICES
    )
    try:
        await rig.scheduler.wait_serving()
        mesh = Mesh(
            backend=backend,
            data_dir=tmp_path,
            compiler=compiler,
            registry=registry,
            scheduler=registry,  # not used: the scheduler is a process
            registry_client=RegistryClient(registry_channel, timeout=15),
            scheduler_client=SchedulerClient(scheduler_channel, timeout=15),
            tasks=None,  # type: ignore[arg-type]
            scheduler_options={},
        )
        yield rig, mesh
    finally:
        rig.stop()
        await scheduler_channel.close()
        await registry_channel.close()
        await registry.stop(0)
        await compiler.stop(0)
        await policy.stop(0)


async def _all_terminal(
    mesh: Mesh, names: list[str], timeout: float
) -> list[execution_pb2.Execution]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            found = [await mesh.get(n) for n in names]
        except Exception:  # the scheduler may be restarting
            found = []
        if found and all(e.state in TERMINAL for e in found):
            return found
        if loop.time() > deadline:
            pending = [(e.name, X.Name(e.state)) for e in found if e.state not in TERMINAL]
            raise AssertionError(f"executions not finished: {pending}")
        await asyncio.sleep(0.2)


def _check_promises(executions: list[execution_pb2.Execution], sink: Sink) -> None:
    for execution in executions:
        assert execution.state == X.EXECUTION_STATE_SUCCEEDED, execution
        for step in execution.steps:
            succeeded = [a for a in step.attempts if a.state == A.ATTEMPT_STATE_SUCCEEDED]
            # Completed exactly once, on the first attempt: a lost worker's
            # attempt is redelivered with the same key, never re-numbered.
            assert len(succeeded) == 1, step
            assert [a.attempt for a in step.attempts] == [1], step
    keys = {
        next(s for s in e.steps if s.step_id == "charge").attempts[0].idempotency_key
        for e in executions
    }
    assert len(keys) == EXECUTIONS
    # Every charge's effect landed once, though some keys were sent twice.
    assert set(sink.effects) == keys
    assert all(sink.calls[k] >= 1 for k in keys)


async def test_executor_sigkill_loses_nothing_and_repeats_no_effect(
    rig: tuple[CrashRig, Mesh], tmp_path: Path
) -> None:
    crash, mesh = rig
    async with running_sink() as sink:
        await mesh.publish(workflow(sink.url), "payments")
        worker = crash.executor("executor-a")
        worker.start()
        await worker.wait_serving()
        names = [(await mesh.start("payments", {"n": i})).name for i in range(EXECUTIONS)]
        kills: list[datetime] = []
        for round_ in range(3):
            # Kill while charges are in flight at the sink, then restart.
            await sink.wait_until(lambda: sink.in_flight > 0 or len(sink.effects) >= EXECUTIONS)
            if len(sink.effects) >= EXECUTIONS:
                break
            worker.kill()
            kills.append(datetime.now().astimezone())
            worker = crash.executor(f"executor-{'bcd'[round_]}")
            worker.start()
            await worker.wait_serving()
        executions = await _all_terminal(mesh, names, timeout=120)
        _check_promises(executions, sink)
        assert len(kills) >= 2
        redelivered = [
            a for e in executions for s in e.steps for a in s.attempts if a.deliveries > 1
        ]
        assert redelivered, "no attempt was in flight at a kill"
        # Lost leases were taken over within the lease time + 2 s of the kill.
        for execution in executions:
            events = await mesh.events(execution.name)
            for event in events:
                if event.type != E.EVENT_TYPE_STEP_STARTED or event.data["delivery"] < 2:
                    continue
                when = event.time.ToDatetime().astimezone()
                kill = max(k for k in kills if k <= when)
                assert (when - kill).total_seconds() <= LEASE_SECONDS + 2, (event, kill)


async def test_scheduler_sigkill_loses_nothing(rig: tuple[CrashRig, Mesh]) -> None:
    crash, mesh = rig
    async with running_sink() as sink:
        await mesh.publish(workflow(sink.url), "payments")
        worker = crash.executor("executor-a")
        worker.start()
        await worker.wait_serving()
        names = [(await mesh.start("payments", {"n": i})).name for i in range(EXECUTIONS)]
        await sink.wait_until(lambda: len(sink.effects) >= EXECUTIONS // 3)
        crash.scheduler.kill()
        await asyncio.sleep(0.5)
        crash.scheduler.start()
        await crash.scheduler.wait_serving()
        executions = await _all_terminal(mesh, names, timeout=120)
        _check_promises(executions, sink)
        # The idempotent start still answers with the same executions.
        again = await mesh.scheduler_client.list_executions(pb.ListExecutionsRequest())
        assert len(again.executions) == EXECUTIONS
