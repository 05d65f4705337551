"""Envoy retries exactly the RPCs the protos declare idempotent.

A backend that fails twice with UNAVAILABLE is retried to success for compiler
DigestWorkflow (NO_SIDE_EFFECTS) and not retried at all for scheduler
TaskQueueService.PollTasks (no idempotency level: each call leases tasks).
The client is a bare channel without grpc's own retries, so every retry seen is
Envoy's.
"""

from __future__ import annotations

import grpc
import pytest

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as scheduler_grpc
from tests.integration.envoy.conftest import Flaky, StartMesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

DIGEST = compiler_pb.DigestWorkflowRequest(
    source=source_pb2.WorkflowSource(content=b"name: x\nsteps: []\n")
)


async def test_idempotent_rpc_is_retried_and_non_idempotent_is_not(
    flaky: Flaky, start_mesh: StartMesh
) -> None:
    port = flaky.server.port
    mesh = await start_mesh({"compiler": [port], "scheduler": [port]})
    # The gateway calls both services through its outbound listener.
    async with grpc.aio.insecure_channel(mesh.outbound("gateway")) as channel:
        reply = await compiler_grpc.CompilerServiceStub(channel).DigestWorkflow(DIGEST, timeout=5)
        assert reply.digest == "ab" * 32
        assert flaky.compiler.digest_calls == 3  # two failures, retried twice by Envoy

        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await scheduler_grpc.TaskQueueServiceStub(channel).PollTasks(
                scheduler_pb.PollTasksRequest(worker_identity="w-1"), timeout=5
            )
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "queue store down (1)" in (failed.value.details() or "")
        assert flaky.task_queue.poll_calls == 1  # not retried

    assert mesh.stat("cluster.out_gateway_compiler.upstream_rq_retry") == 2
    assert mesh.stat("cluster.out_gateway_compiler.upstream_rq_retry_success") == 1
    assert mesh.stat("cluster.out_gateway_scheduler.upstream_rq_retry") == 0


async def test_retries_stop_at_num_retries(flaky: Flaky, start_mesh: StartMesh) -> None:
    flaky.compiler.failures = 100
    mesh = await start_mesh({"compiler": [flaky.server.port]})
    async with grpc.aio.insecure_channel(mesh.outbound("registry")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await compiler_grpc.CompilerServiceStub(channel).DigestWorkflow(DIGEST, timeout=5)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.compiler.digest_calls == 1 + 3  # num_retries: 3 in the topology
    assert mesh.stat("cluster.out_registry_compiler.upstream_rq_retry_limit_exceeded") == 1
