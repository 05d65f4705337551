"""Per-call latency Envoy adds with mTLS, against direct calls, in the same run.

One compiler (the full Maestro GrpcServer) in this process, one Envoy process
generated from deploy/mesh/topology.yaml (the local shape of `maestro up
--envoy`), and three ways to call DigestWorkflow, alternating rounds so all see
the same machine state:

- direct: plaintext straight to the compiler (what `maestro up` does);
- native mTLS: straight to the compiler serving gRPC TLS with client auth
  (tls_* settings, no Envoy);
- envoy mTLS: plaintext to the registry's outbound listener → Envoy → mTLS →
  the compiler's inbound listener → the compiler. Both sidecar hops run in the
  one Envoy here (in Kubernetes they are two Envoys, one per pod).

Sequential unary calls from one client in this process; Envoy's access logs
go to /dev/null.

    .venv/bin/python bench/envoy_overhead.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from maestro.cli.certs import identity_files, make_certs
from maestro.cli.envoy import EnvoyProcess, envoy_binary
from maestro.cli.envoy_config import LocalPlan, write_local
from maestro.cli.topology import find_topology, load_topology
from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as pb_grpc
from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for bench.common

from bench.common import machine_line, percentile  # noqa: E402

REQUEST = pb.DigestWorkflowRequest(
    source=source_pb2.WorkflowSource(content=b"name: bench\nsteps:\n  - id: a\n    type: task\n")
)


async def measure(channel: grpc.aio.Channel, calls: int) -> list[float]:
    stub = pb_grpc.CompilerServiceStub(channel)
    for _ in range(50):  # warm-up (connections, TLS handshakes)
        await stub.DigestWorkflow(REQUEST, timeout=5)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.DigestWorkflow(REQUEST, timeout=5)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def envoy_version() -> str:
    reply = subprocess.run(
        [str(envoy_binary()), "--version"], capture_output=True, text=True, check=False
    )
    return reply.stdout.split("version:")[-1].strip()


def tls_channel(certs: Path, address: str) -> grpc.aio.Channel:
    files = identity_files(certs, "registry")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", "compiler.maestro.local")]
    )


async def main(calls: int, rounds: int) -> None:
    topology = load_topology(find_topology(Path(__file__).parent))
    with tempfile.TemporaryDirectory(prefix="envoy-bench-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        make_certs(certs, topology.identities())
        server_files = identity_files(certs, "compiler")
        direct: GrpcServer = await create_server(CompilerSettings(port=0, metrics_port=None))
        native: GrpcServer = await create_server(
            CompilerSettings(
                port=0,
                metrics_port=None,
                tls_cert_file=server_files.cert,
                tls_key_file=server_files.key,
                tls_ca_file=server_files.ca,
            )
        )
        plan = LocalPlan.free(topology, {"compiler": [direct.port]})
        config = write_local(topology, plan, certs, work)
        envoy = EnvoyProcess(config, plan.admin).start()
        results: dict[str, list[float]] = {"direct": [], "native mTLS": [], "envoy mTLS": []}
        try:
            await asyncio.to_thread(envoy.wait_ready, 15)
            channels = {
                "direct": grpc.aio.insecure_channel(f"127.0.0.1:{direct.port}"),
                "native mTLS": tls_channel(certs, f"127.0.0.1:{native.port}"),
                "envoy mTLS": grpc.aio.insecure_channel(f"127.0.0.1:{plan.outbound['registry']}"),
            }
            for _ in range(rounds):
                for name, channel in channels.items():
                    results[name] += await measure(channel, calls)
            for channel in channels.values():
                await channel.close()
            stats = envoy.stats("cluster.out_registry_compiler.")
            retries = stats.get("cluster.out_registry_compiler.upstream_rq_retry", 0)
            versions = sorted(
                name.rsplit(".versions.", 1)[1]
                for name, count in stats.items()
                if ".ssl.versions." in name and count
            )
        finally:
            envoy.stop()
            await direct.stop(0)
            await native.stop(0)
    version = await asyncio.to_thread(envoy_version)
    print(machine_line())
    print(f"envoy: {version}, --concurrency 1; retries during the run: {retries}")
    print(f"TLS between the listeners: {', '.join(versions)}")
    print(f"calls: {calls} x {rounds} rounds each, sequential, client in-process")
    base = statistics.median(results["direct"])
    for name, values in results.items():
        p50, p95, p99 = (
            statistics.median(values),
            percentile(values, 0.95),
            percentile(values, 0.99),
        )
        print(
            f"{name:12s} p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms  "
            f"p50 ratio {p50 / base:.2f}  added {p50 - base:+.3f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
