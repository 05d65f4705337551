"""Signer benchmarks: SignReceipt latency over gRPC, concurrent signing
throughput (group commit), proof serving, and the in-process costs of the log
(append, proofs) and of offline bundle verification.

The signer runs as its own process (``python -m maestro.services.signer``,
settings in the environment, a free 127.0.0.1 port, PR_SET_PDEATHSIG so it
never outlives the bench), once per backend: ``embedded`` (SQLite file) and
``production`` (a throwaway PostgreSQL with its durable defaults, fsync and
synchronous_commit on, started here and removed at the end).

Scenarios, all bounded in count and time:

1. sign-latency: one client, closed loop, N SignReceipt calls (execution
   statements of ~1 KiB, a fresh request id each) after a warm-up; p50/p95/p99
   client-observed. Target: p95 < 5 ms.
2. sign-throughput: C concurrent clients, closed loop; receipts/s and latency
   (concurrent appends share one commit).
3. proofs: C concurrent clients alternating GetInclusionProof (random leaf,
   latest size) and GetConsistencyProof (random older size); proofs/s.
4. sign-in-process, per backend: the same closed loop as sign-latency on the
   signer's domain (``Signer.sign_receipt``, no gRPC, no second process) over
   a database of its own, with the statements one append sends (SQLAlchemy
   cursor executions; BEGIN/COMMIT excluded): the store's share of 1.
5. in-process: MerkleTree appends/s and inclusion + consistency proofs/s at
   100k leaves; offline ``verify_bundle`` of a 100-receipt bundle.

    .venv/bin/python bench/signer.py [--backend embedded|production|both] [--quick]
        [--out results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_INHERITED_FORK_SUPPORT = os.environ.get("GRPC_ENABLE_FORK_SUPPORT")
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.servers (throwaway PostgreSQL)

from sqlalchemy import event  # noqa: E402

from bench.common import percentile, speed_probe  # noqa: E402
from maestro.runtime import context, db, provenance  # noqa: E402
from maestro.runtime.clients import SignerClient, open_channel  # noqa: E402
from maestro.services.signer.log import TransparencyLog  # noqa: E402
from maestro.services.signer.merkle import MerkleTree  # noqa: E402
from maestro.services.signer.service import Signer  # noqa: E402
from maestro.services.signer.store import SignerStore  # noqa: E402
from maestro.signer.v1 import signer_service_pb2 as pb  # noqa: E402
from tests import processes  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.servers import fresh_database, postgres_cluster  # noqa: E402
from tests.unit.signer.support import (  # noqa: E402
    ANA,
    KEK,
    ORIGIN,
    AllowAll,
    execution_statement,
    offline_log,
    sign_request,
)


@dataclass(frozen=True)
class Plan:
    warmup: int = 100
    latency_calls: int = 1000
    throughput_calls: int = 3000
    concurrency: int = 16
    proof_calls: int = 4000
    tree_leaves: int = 100_000
    bundle_receipts: int = 100
    cap_seconds: float = 60.0


QUICK = Plan(
    warmup=20,
    latency_calls=200,
    throughput_calls=600,
    proof_calls=600,
    tree_leaves=20_000,
    bundle_receipts=20,
    cap_seconds=20.0,
)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
    }


@asynccontextmanager
async def signer_process(root: Path, database_url: str) -> AsyncIterator[str]:
    """A signer in its own process, serving; yields its address."""
    port = free_port()
    env = {
        **os.environ,
        "MAESTRO_SIGNER_HOST": "127.0.0.1",
        "MAESTRO_SIGNER_PORT": str(port),
        "MAESTRO_SIGNER_METRICS_PORT": "0",
        "MAESTRO_SIGNER_DATA_DIR": str(root / "signer"),
        "MAESTRO_SIGNER_DATABASE_URL": database_url,
        "MAESTRO_SIGNER_ORIGIN": "maestro.dev/receipts/bench",
        "MAESTRO_SIGNER_LOG_LEVEL": "WARNING",
    }
    env.pop("GRPC_ENABLE_FORK_SUPPORT")
    if _INHERITED_FORK_SUPPORT is not None:
        env["GRPC_ENABLE_FORK_SUPPORT"] = _INHERITED_FORK_SUPPORT
    log = root / "signer.log"
    address = f"127.0.0.1:{port}"
    with processes.running("maestro.services.signer", env=env, log=log, cwd=root) as process:
        await processes.wait_serving(address, process, log)
        yield address


def _statement_request(i: int) -> pb.SignReceiptRequest:
    execution = f"executions/01K{i:023d}"
    return sign_request(execution_statement(execution), execution, str(uuid.uuid4()))


async def closed_loop(
    clients: int,
    calls: int,
    cap_seconds: float,
    make_call: Callable[[int], Awaitable[Any]],
) -> tuple[list[float], float, int]:
    """``calls`` calls over ``clients`` workers; returns latencies, wall time, errors."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(calls))
    deadline = time.monotonic() + cap_seconds

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                await make_call(i)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - started, errors


async def rpc_scenarios(address: str, plan: Plan) -> dict[str, Any]:
    channel = open_channel(address, caller="registry", services=SignerClient.SERVICES)
    client = SignerClient(channel, timeout=10, address=address)
    results: dict[str, Any] = {}
    try:
        with context.bind(context.CallContext(principal=ANA)):
            requests = iter(range(10**9))

            async def sign(_: int) -> None:
                await client.sign_receipt(_statement_request(next(requests)))

            await closed_loop(1, plan.warmup, plan.cap_seconds, sign)
            latencies, wall, errors = await closed_loop(
                1, plan.latency_calls, plan.cap_seconds, sign
            )
            results["sign_latency"] = {
                **summary(latencies),
                "errors": errors,
                "per_s": round(len(latencies) / wall, 1),
            }
            latencies, wall, errors = await closed_loop(
                plan.concurrency, plan.throughput_calls, plan.cap_seconds, sign
            )
            results["sign_throughput"] = {
                **summary(latencies),
                "clients": plan.concurrency,
                "errors": errors,
                "per_s": round(len(latencies) / wall, 1),
            }
            size = (await client.get_checkpoint()).checkpoint.tree_size
            rng = random.Random(7)

            async def prove(i: int) -> None:
                if i % 2:
                    await client.get_inclusion_proof(
                        pb.GetInclusionProofRequest(log_index=rng.randrange(size))
                    )
                else:
                    await client.get_consistency_proof(
                        pb.GetConsistencyProofRequest(first_size=rng.randrange(1, size + 1))
                    )

            latencies, wall, errors = await closed_loop(
                plan.concurrency // 2, plan.proof_calls, plan.cap_seconds, prove
            )
            results["proofs"] = {
                **summary(latencies),
                "tree_size": size,
                "clients": plan.concurrency // 2,
                "errors": errors,
                "per_s": round(len(latencies) / wall, 1),
            }
    finally:
        await channel.close()
    return results


async def sign_in_process(url: str, plan: Plan) -> dict[str, Any]:
    """Scenario 4: SignReceipt's domain operation alone, and its statements."""
    store = SignerStore(db.create_sync_engine(url))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    try:
        await asyncio.to_thread(store.migrate)
        log = TransparencyLog(store, KEK, ORIGIN)
        await log.open()
        signer = Signer(store, log, AllowAll())
        requests = iter(range(10**9))

        async def sign(_: int) -> None:
            await signer.sign_receipt(_statement_request(next(requests)))

        with context.bind(context.CallContext(principal=ANA)):
            await closed_loop(1, plan.warmup, plan.cap_seconds, sign)
            event.listen(store.engine, "before_cursor_execute", count)
            latencies, wall, errors = await closed_loop(
                1, plan.latency_calls, plan.cap_seconds, sign
            )
            event.remove(store.engine, "before_cursor_execute", count)
        await log.close()
    finally:
        await store.close()
    return {
        **summary(latencies),
        "errors": errors,
        "per_s": round(len(latencies) / wall, 1),
        "statements_per_append": round(len(statements) / max(1, len(latencies)), 2),
    }


def in_process(plan: Plan) -> dict[str, Any]:
    rng = random.Random(11)
    tree = MerkleTree()
    leaves = [provenance.leaf_hash(i.to_bytes(8, "big")) for i in range(plan.tree_leaves)]
    started = time.perf_counter()
    for leaf in leaves:
        tree.append(leaf)
    append_s = time.perf_counter() - started
    n = plan.tree_leaves
    started = time.perf_counter()
    proofs = 2000
    for _ in range(proofs // 2):
        tree.inclusion_proof(rng.randrange(n), n)
        tree.consistency_proof(rng.randrange(1, n), n)
    proof_s = time.perf_counter() - started
    log = offline_log(plan.bundle_receipts)
    bundle = log.bundle()
    started = time.perf_counter()
    report = provenance.verify_bundle(bundle, log.jwks)
    verify_s = time.perf_counter() - started
    assert report.ok
    return {
        "tree_leaves": n,
        "appends_per_s": round(n / append_s),
        "proofs_per_s": round(proofs / proof_s),
        "bundle_receipts": plan.bundle_receipts,
        "bundle_bytes": len(bundle),
        "verify_bundle_ms": round(verify_s * 1000, 1),
    }


async def run_backend(backend: str, plan: Plan, root: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        if backend == "embedded":
            url = f"sqlite+aiosqlite:///{root / 'signer.db'}"
            own_url = f"sqlite+aiosqlite:///{root / 'in-process.db'}"
        else:
            server = stack.enter_context(postgres_cluster(durable=True))
            url, own_url = fresh_database(server), fresh_database(server)
        async with signer_process(root, url) as address:
            results = await rpc_scenarios(address, plan)
        results["sign_in_process"] = await sign_in_process(own_url, plan)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    backends = ["embedded", "production"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average": os.getloadavg()[0],
        "speed_probe_ms": speed_probe(),
        "plan": plan.__dict__,
    }
    for backend in backends:
        root = Path(tempfile.mkdtemp(prefix=f"maestro-bench-signer-{backend}-"))
        try:
            results[backend] = asyncio.run(run_backend(backend, plan, root))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(backend, json.dumps(results[backend], indent=2), flush=True)
    results["in_process"] = in_process(plan)
    print("in_process", json.dumps(results["in_process"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
