"""Per-RPC cost of the Maestro server runtime.

Runs the compiler's DigestWorkflow through (a) a full Maestro GrpcServer
(tracing + context/metrics/error interceptors, health, reflection) and (b) a bare
grpc.aio server with the same servicer, alternating rounds so both see the same
machine state. Sequential unary calls from one client in the same process.

    .venv/bin/python bench/rpc_overhead.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import grpc

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as pb_grpc
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server
from maestro.services.compiler.service import Compiler
from maestro.services.compiler.servicer import CompilerServicer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for bench.common

from bench.common import machine_line, percentile  # noqa: E402

REQUEST = pb.DigestWorkflowRequest(
    source=source_pb2.WorkflowSource(content=b"name: bench\nsteps:\n  - id: a\n    type: task\n")
)


async def measure(address: str, calls: int) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.CompilerServiceStub(channel)
        for _ in range(50):  # warm-up
            await stub.DigestWorkflow(REQUEST, timeout=5)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await stub.DigestWorkflow(REQUEST, timeout=5)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies


async def main(calls: int, rounds: int) -> None:
    full = await create_server(CompilerSettings(port=0, metrics_port=None))
    bare = grpc.aio.server()
    pb_grpc.add_CompilerServiceServicer_to_server(CompilerServicer(Compiler()), bare)
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    results: dict[str, list[float]] = {"maestro": [], "bare": []}
    try:
        for _ in range(rounds):
            results["bare"] += await measure(f"127.0.0.1:{bare_port}", calls)
            results["maestro"] += await measure(f"127.0.0.1:{full.port}", calls)
    finally:
        await full.stop(0)
        await bare.stop(0)
    print(machine_line())
    print(f"calls: {calls} x {rounds} rounds each, sequential, client in-process")
    for name, values in results.items():
        p50, p95, p99 = (
            statistics.median(values),
            percentile(values, 0.95),
            percentile(values, 0.99),
        )
        print(f"{name:8s} p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms")
    ratio = statistics.median(results["maestro"]) / statistics.median(results["bare"])
    added = statistics.median(results["maestro"]) - statistics.median(results["bare"])
    print(f"median ratio maestro/bare: {ratio:.2f}  (added {added:.3f} ms per call)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
