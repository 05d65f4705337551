"""Policy decision latency: the engine in process, and Decide over gRPC, with and
without the enforcing client's cache.

Figures (sequential calls from one client unless said otherwise):

- engine: ``CompiledPolicy.evaluate`` of the shipped bundle, no cache, an allow
  (viewer reads) and a denial with five reasons and an appeal, per engine
  (regopy, the default, and regorus);
- gate, cached: ``PolicyGate.check`` answered from the client's TTL cache (the
  in-process path every service takes for a repeated question);
- Decide over gRPC to a policy server in its own process (full runtime,
  SQLite decision log, durable group commit by default): distinct questions
  (evaluated), the same question (the server's evaluation cache), and
  ``PolicyGate.check`` with the client cache off; plus 16 concurrent clients;
  per engine (``MAESTRO_POLICY_ENGINE``) and log mode.

Targets: p99 < 1 ms cached in process, p99 < 5 ms over gRPC.

Every figure is measured in ``--rounds`` rounds (default 5; all figures of a
round back to back, on the same servers) and reported as the median over the
rounds of each round's p50, p95 and p99, with the range of the rounds' p99:
on the shared two-core VM a single window of 2,000 calls moved by 30-50 %
between back-to-back runs, and the median of rounds is the figure the noise
moves least.

    .venv/bin/python bench/policy.py [--calls 2000] [--rounds 5]
        [--log durable|async|both] [--engine regopy|regorus|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.clients import open_channel
from maestro.runtime.errors import PermissionDeniedError
from maestro.runtime.policy import PolicyClient, PolicyGate, principal_message
from maestro.services.policy.bundle import read_source
from maestro.services.policy.config import DEFAULT_BUNDLE
from maestro.services.policy.engine import ENGINE_NAMES, EngineName, RegoEngine, create_engine
from maestro.services.policy.regorus_engine import RegorusEngine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.processes

from bench.common import machine_line, percentile, speed_probe  # noqa: E402
from tests import processes  # noqa: E402
from tests.conftest import free_port  # noqa: E402

VIEWER = context.Principal(tenant="acme", subject="ana", roles=("viewer",))
NOBODY = context.Principal(tenant="acme", subject="ana")
ALLOW = {
    "principal": {"tenant": "acme", "subject": "ana", "roles": ["viewer"], "clearance": ""},
    "action": "workflow.read",
    "resource": {"type": "workflow", "name": "workflows/payroll", "tenant": "acme"},
    "context": {},
    "enforcer": "registry",
}
DENY = {**ALLOW, "principal": {**ALLOW["principal"], "roles": []}}
DENY["resource"] = {**ALLOW["resource"], "classification": "restricted"}


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(percentile(values, 0.95) * 1000, 3),
        "p99_ms": round(percentile(values, 0.99) * 1000, 3),
    }


def timed(fn: Callable[[], object], calls: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        fn()
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - started)
    return latencies


async def timed_async(
    fn: Callable[[int], Awaitable[object]], calls: int, warmup: int = 50
) -> list[float]:
    for i in range(warmup):
        await fn(-1 - i)
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        await fn(i)
        latencies.append(time.perf_counter() - started)
    return latencies


def engine_figures(engine: EngineName, calls: int) -> dict[str, Any]:
    policy = create_engine(engine).compile(read_source(DEFAULT_BUNDLE))
    allow, deny = ALLOW, DENY
    assert policy.evaluate(allow).allow and not policy.evaluate(deny).allow
    assert len(policy.evaluate(deny).reasons) == 5
    return {
        f"engine allow [{engine}]": summary(timed(lambda: policy.evaluate(allow), calls)),
        f"engine deny (5 reasons + appeal) [{engine}]": summary(
            timed(lambda: policy.evaluate(deny), calls)
        ),
    }


class _NoCall(PolicyClient):
    """A client that must not be called: the gate's cache answers."""

    def __init__(self, answer: decision_pb2.Decision) -> None:
        self._answer = answer
        self.calls = 0

    async def decide(self, request: Any, *, timeout: float | None = None) -> Any:
        self.calls += 1
        return pb.DecideResponse(decision=self._answer)


async def gate_cache_figures(calls: int) -> dict[str, Any]:
    answer = decision_pb2.Decision(name="decisions/01J00000000000000000000000", allow=True)
    answer.bundle_revision = "sha256:bench"
    client = _NoCall(answer)
    # No revision watch: there is no server behind this client.
    gate = PolicyGate(client, ttl_seconds=3600, watch=False)

    async def check(_: int) -> object:
        return await gate.check(
            "workflow.read", resource="workflows/payroll", labels={"team": "pay"}
        )

    with context.bind(context.CallContext(principal=VIEWER)):
        latencies = await timed_async(check, calls)
    assert client.calls == 1
    return {"gate check, cached (in process)": summary(latencies)}


@asynccontextmanager
async def policy_process(root: Path, durable: bool, engine: EngineName) -> AsyncIterator[str]:
    """A policy server in its own process, serving; yields its address."""
    port = free_port()
    env = {
        **os.environ,
        "MAESTRO_POLICY_HOST": "127.0.0.1",
        "MAESTRO_POLICY_PORT": str(port),
        "MAESTRO_POLICY_METRICS_PORT": "0",
        "MAESTRO_POLICY_DATA_DIR": str(root),
        "MAESTRO_POLICY_LOG_LEVEL": "WARNING",
        "MAESTRO_POLICY_DECISION_LOG_DURABLE": "true" if durable else "false",
        "MAESTRO_POLICY_ENGINE": engine,
    }
    log = root / "policy.log"
    address = f"127.0.0.1:{port}"
    with processes.running("maestro.services.policy", env=env, log=log, cwd=root) as process:
        await processes.wait_serving(address, process, log)
        yield address


def _question(who: context.Principal, name: str) -> pb.DecideRequest:
    return pb.DecideRequest(
        principal=principal_message(who),
        action="workflow.read",
        resource=decision_pb2.Resource(type="workflow", name=name, tenant="acme"),
        request_id=str(uuid.uuid4()),
    )


async def rpc_figures(address: str, calls: int, round_no: int = 0) -> dict[str, Any]:
    """One round of the gRPC figures; names carry ``round_no`` so that a
    distinct question is new to the server in every round."""
    channel = open_channel(address, caller="registry", services=PolicyClient.SERVICES)
    client = PolicyClient(channel, timeout=10, address=address)
    figures: dict[str, Any] = {}
    try:
        evaluations: list[float] = []

        async def distinct(i: int) -> object:
            response = await client.decide(_question(VIEWER, f"workflows/wf-{round_no}-{i}"))
            evaluations.append(response.decision.evaluation_duration.ToNanoseconds() / 1e9)
            return response

        async def repeated(_: int) -> object:
            return await client.decide(_question(VIEWER, "workflows/payroll"))

        async def denied(i: int) -> object:
            return await client.decide(_question(NOBODY, f"workflows/deny-{round_no}-{i}"))

        figures["Decide, distinct questions (evaluated)"] = summary(
            await timed_async(distinct, calls)
        )
        figures["  of which evaluation in the server"] = summary(evaluations[-calls:])
        figures["Decide, same question (server cache)"] = summary(
            await timed_async(repeated, calls)
        )
        figures["Decide, distinct denials"] = summary(await timed_async(denied, calls))

        uncached = PolicyGate(client, ttl_seconds=0)
        cached = PolicyGate(client, ttl_seconds=60)

        async def gate_check(gate: PolicyGate, i: int) -> object:
            return await gate.check("workflow.read", resource=f"workflows/wf-{i % 100}")

        with context.bind(context.CallContext(principal=VIEWER)):
            figures["gate check, no client cache (gRPC)"] = summary(
                await timed_async(lambda i: gate_check(uncached, i), calls)
            )
            figures["gate check, client cache on, 100 questions"] = summary(
                await timed_async(lambda i: gate_check(cached, i), calls, warmup=0)
            )
            with suppress(PermissionDeniedError):
                await uncached.check("workflow.delete", resource="workflows/x")

        latencies: list[float] = []
        counter = iter(range(calls * 2))

        async def worker() -> None:
            for i in counter:
                started = time.perf_counter()
                await distinct(10_000_000 + i)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(16)))
        wall = time.perf_counter() - started
        figures["Decide, 16 concurrent clients"] = {
            **summary(latencies),
            "decisions_per_s": round(len(latencies) / wall),
        }
    finally:
        await channel.close()
    return figures


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from its rounds: the median of each statistic, and the
    range of the rounds' p99."""
    figure: dict[str, Any] = {"n": sum(r["n"] for r in rounds), "rounds": len(rounds)}
    for key in ("p50_ms", "p95_ms", "p99_ms", "decisions_per_s"):
        if key in rounds[0]:
            figure[key] = round(statistics.median(r[key] for r in rounds), 3)
    p99s = [r["p99_ms"] for r in rounds]
    figure["p99_range_ms"] = [min(p99s), max(p99s)]
    return figure


def gather_rounds(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: combine([r[name] for r in per_round]) for name in per_round[0]}


async def main(calls: int, rounds: int, modes: list[str], engines: list[EngineName]) -> None:
    print(machine_line())
    print(
        f"regopy: rego-cpp {RegoEngine.version()}; regorus: gordon-to-regorus "
        f"{RegorusEngine.version()}; engines: {', '.join(engines)}; calls per figure: {calls}"
    )
    results: dict[str, Any] = {}
    for engine in engines:
        results.update(gather_rounds([engine_figures(engine, calls) for _ in range(rounds)]))
    results.update(gather_rounds([await gate_cache_figures(calls) for _ in range(rounds)]))
    for engine in engines:
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="bench-policy-") as root:
                async with policy_process(
                    Path(root), durable=mode == "durable", engine=engine
                ) as address:
                    figures = gather_rounds(
                        [await rpc_figures(address, calls, r) for r in range(rounds)]
                    )
                for name, figure in figures.items():
                    results[f"{name} [{engine}, {mode} log]"] = figure
    width = max(len(n) for n in results)
    for name, figure in results.items():
        extra = f"  {figure['decisions_per_s']}/s" if "decisions_per_s" in figure else ""
        low, high = figure["p99_range_ms"]
        print(
            f"{name:<{width}}  p50 {figure['p50_ms']:7.3f} ms  p95 {figure['p95_ms']:7.3f} ms"
            f"  p99 {figure['p99_ms']:7.3f} ms (rounds {low:.2f}-{high:.2f}){extra}"
        )
    print(f"speed probe at the end: {speed_probe()} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log", choices=["durable", "async", "both"], default="both")
    parser.add_argument("--engine", choices=[*ENGINE_NAMES, "both"], default="both")
    args = parser.parse_args()
    modes = ["durable", "async"] if args.log == "both" else [args.log]
    engines: list[EngineName] = list(ENGINE_NAMES) if args.engine == "both" else [args.engine]
    asyncio.run(main(args.calls, args.rounds, modes, engines))
