"""Authoring latency: validate + compile + digest of a generated 200-step
workflow, and the diff of two 200-step versions (issue target: p95 < 20 ms each).

Measured in process against the compiler's domain API, and over gRPC against
a real compiler server on a loopback port (client in the same process).

The compiler keeps recent documents' work in an LRU keyed by their whole
source (editors re-validate the same document constantly), so every figure
comes twice: cold, each run on a document no cache has seen (the same
workflow with a description unique to the run: the same work; the LRU
evicts, inside the timed calls, as it does in steady state), where
validate+compile+digest share their work within the run as an editor's
requests for one document do; and warm, the same document every run.
"uncached" is a compiler without the cache: each operation does all its work.
The process runs with the compiler server's garbage-collection setting
(``gcpause.tune_collection``, which ``create_server`` applies).

    .venv/bin/python bench/authoring.py [--steps 200] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as pb_grpc
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.gcpause import tune_collection
from maestro.services.compiler.server import create_server
from maestro.services.compiler.service import Compiler, Source

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for bench.common

from bench.common import machine_line  # noqa: E402


def generate(steps: int, seed: int) -> dict[str, Any]:
    """A layered DAG: each step needs 1-3 earlier steps and maps an input from
    one of them with a typed CEL expression; every 25th step is a condition
    and every 40th a loop, so the checker and planner see every construct."""
    rng = random.Random(seed)
    doc: dict[str, Any] = {
        "name": f"bench-{steps}",
        "description": "generated benchmark workflow",
        "labels": {"classification": "internal"},
        "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [],
    }
    ids: list[str] = []
    for i in range(steps):
        sid = f"s{i:04d}"
        step: dict[str, Any] = {"id": sid, "type": "task", "handler": "echo", "timeout": "30s"}
        if ids:
            needs = sorted(set(rng.sample(ids[-20:], k=min(len(ids[-20:]), rng.randint(1, 3)))))
            step["needs"] = needs
            step["input"] = {"x": f"steps.{needs[0]}.output.value * 2.0 + double(inputs.n)"}
        else:
            step["input"] = {"x": "inputs.n + 1"}
        # A distinct schema per step, so no per-document dedupe or cache helps.
        step["outputSchema"] = {
            "type": "object",
            "required": ["value"],
            "properties": {"value": {"type": "number"}, f"note{i}": {"type": "string"}},
        }
        step["retry"] = {"maxAttempts": 3, "initialBackoff": "1s", "maxBackoff": "10s"}
        if i % 40 == 39:
            step = {
                "id": sid,
                "type": "loop",
                "needs": step.get("needs", []),
                "loop": {
                    "items": "[1, 2, 3]",
                    "parallelism": 3,
                    "body": {"type": "task", "handler": "echo", "timeout": "5s"},
                },
            }
        doc["steps"].append(step)
        ids.append(sid)
    return doc


def mutate(doc: dict[str, Any], seed: int) -> dict[str, Any]:
    """A next version: ~10% of steps change timeout or handler, a few are added."""
    rng = random.Random(seed)
    new: dict[str, Any] = json.loads(json.dumps(doc))
    for step in rng.sample(new["steps"], k=len(new["steps"]) // 10):
        if step["type"] == "task":
            step["timeout"] = "45s"
            step["handler"] = "http"
    last = new["steps"][-1]["id"]
    for j in range(3):
        new["steps"].append(
            {"id": f"extra{j}", "type": "task", "handler": "echo", "timeout": "5s", "needs": [last]}
        )
    return new


def summary(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"{name:40s} p50 {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def variant(content: bytes, run: int) -> bytes:
    """The same document but for a description unique to ``run``: the same
    work, and a source no cache has seen."""
    return content.replace(b'"description": "', b'"description": "run %d: ' % run, 1)


Op = Callable[[Source, Source], object]


def timed(fn: Op, runs: int, sources: Callable[[int], tuple[Source, Source]]) -> list[float]:
    """``fn``'s latencies in ms over ``runs`` runs on ``sources(run)`` (built untimed)."""
    fn(*sources(-1))  # warm-up
    samples = []
    for run in range(runs):
        base, target = sources(run)
        started = time.perf_counter()
        fn(base, target)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def timed_async(
    fn: Callable[[bytes, bytes], Awaitable[object]],
    runs: int,
    sources: Callable[[int], tuple[bytes, bytes]],
) -> list[float]:
    await fn(*sources(-1))
    samples = []
    for run in range(runs):
        base, target = sources(run)
        started = time.perf_counter()
        await fn(base, target)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main(steps: int, runs: int) -> None:
    base_doc = generate(steps, seed=1)
    target_doc = mutate(base_doc, seed=2)
    base = json.dumps(base_doc).encode()
    target = json.dumps(target_doc).encode()
    tune_collection()  # what the compiler server does at start
    compiler = Compiler()
    src, tgt = Source(base, is_json=True), Source(target, is_json=True)
    assert compiler.validate(src).valid, compiler.validate(src).report.findings[:3]

    def cold(run: int) -> tuple[Source, Source]:
        return (
            Source(variant(base, run), is_json=True),
            Source(variant(target, run), is_json=True),
        )

    def warm(run: int) -> tuple[Source, Source]:
        return src, tgt

    def validate_compile_digest(compiler: Compiler, source: Source) -> None:
        compiler.validate(source)
        compiler.compile(source)
        compiler.digest(source)

    operations: list[tuple[str, Op]] = [
        (f"validate+compile+digest ({steps})", lambda b, t: validate_compile_digest(compiler, b)),
        (f"diff ({steps} vs {steps + 3})", compiler.diff),
        # Each operation on its own (the target applies to each).
        ("validate, one pass", lambda b, t: compiler.validate(b)),
        ("compile, one pass", lambda b, t: compiler.compile(b)),
        ("digest, one pass", lambda b, t: compiler.digest(b)),
    ]
    results = [summary(f"cold {name}", timed(op, runs, cold)) for name, op in operations]
    results += [summary(f"warm {name}", timed(op, runs, warm)) for name, op in operations]
    # No cache at all: each operation does all of its work (the "3 ops" before the cache).
    uncached = Compiler(cache_size=0)
    results.append(
        summary(
            "uncached validate+compile+digest",
            timed(lambda b, t: validate_compile_digest(uncached, b), runs, warm),
        )
    )

    server = await create_server(CompilerSettings(port=0, metrics_port=None))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.CompilerServiceStub(channel)

            def workflow_source(content: bytes) -> source_pb2.WorkflowSource:
                return source_pb2.WorkflowSource(
                    content=content, format=source_pb2.SOURCE_FORMAT_JSON
                )

            async def rpc_all(base: bytes, target: bytes) -> None:
                ws = workflow_source(base)
                await stub.ValidateWorkflow(pb.ValidateWorkflowRequest(source=ws), timeout=10)
                await stub.CompileWorkflow(pb.CompileWorkflowRequest(source=ws), timeout=10)
                await stub.DigestWorkflow(pb.DigestWorkflowRequest(source=ws), timeout=10)

            async def rpc_diff(base: bytes, target: bytes) -> None:
                request = pb.DiffWorkflowsRequest(
                    base=workflow_source(base), target=workflow_source(target)
                )
                await stub.DiffWorkflows(request, timeout=10)

            def cold_bytes(run: int) -> tuple[bytes, bytes]:
                return variant(base, run), variant(target, run)

            def warm_bytes(run: int) -> tuple[bytes, bytes]:
                return base, target

            for label, sources in (("cold", cold_bytes), ("warm", warm_bytes)):
                results.append(
                    summary(
                        f"gRPC {label} validate+compile+digest",
                        await timed_async(rpc_all, runs, sources),
                    )
                )
                results.append(
                    summary(f"gRPC {label} diff", await timed_async(rpc_diff, runs, sources))
                )
    finally:
        await server.stop(0)
    print(machine_line())
    print(f"document: {steps} steps, {len(base)} bytes JSON")
    for line in results:
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.runs))
