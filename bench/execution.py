"""Execution benchmarks: durable starts, end-to-end throughput, fan-out,
per-step orchestration overhead and worker-kill resume, per backend.

Every service runs as its own process (``python -m maestro.services.<svc>``,
settings in the environment, free 127.0.0.1 ports, PR_SET_PDEATHSIG so nothing
outlives the bench): compiler, registry and, per scenario, a fresh scheduler
(new database) with its executors; the gateway during the enqueue scenario.
Backends: ``embedded`` (SQLite, ``dispatch=sql``) and ``production``
(PostgreSQL with its durable defaults — fsync and synchronous_commit on — and
Redis Streams, ``dispatch=redis``; both started here and removed at the end).

Scenarios (figures are client-observed unless they say "journal"):

1. enqueue — StartExecution at a fixed open-loop rate (sends on a clock, never
   waiting for replies; latency from each request's *scheduled* send time, so
   client lag counts against us), over gRPC and over REST; no executor runs,
   so it is the pure durable-start cost. Then a ladder of rising rates to find
   the highest one with < 1 % errors and >= 90 % of the offered throughput.
2. e2e — N executions of a 3-step linear workflow (echo, noop, echo), 8
   closed-loop clients (start, then follow StreamExecutionEvents to the
   terminal event), with one executor and with two (concurrency 32 each).
3. fan-out — a 100-item loop (parallelism 100, noop body) and a join step.
4. per-step overhead — from the journal events of the e2e runs (8 clients:
   the scheduler is saturated, so these gaps include queueing), and of a
   serial run (one execution at a time: the orchestration's own gaps).
5. worker kill — two executors, 2 s sleep steps, SIGKILL one while it holds
   tasks; time from the kill to the redeliveries on the survivor (lease 2 s).

    .venv/bin/python bench/execution.py [--backend embedded|production|both] [--quick]
        [--out results.json] [--profile] [--keep-logs]
        [--scenarios enqueue,e2e1,fanout,serial,e2e2,kill] [--e2e-executions N]

``--profile`` samples each scheduler's Python stacks (5 ms of CPU time per
sample) and prints where its CPU goes; it is for diagnosis, not measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Popen forks while grpc threads run: without this grpc logs a line per fork.
# Set for this process only; the services get the environment they would get.
_INHERITED_FORK_SUPPORT = os.environ.get("GRPC_ENABLE_FORK_SUPPORT")
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import grpc  # noqa: E402 - after GRPC_ENABLE_FORK_SUPPORT
import httpx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.servers (throwaway PostgreSQL and Redis)

from bench.common import percentile, speed_probe  # noqa: E402
from maestro.common.v1 import source_pb2  # noqa: E402
from maestro.registry.v1 import registry_service_pb2 as rpb  # noqa: E402
from maestro.runtime.clients import RegistryClient, open_channel, probe_health  # noqa: E402
from maestro.scheduler.v1 import execution_pb2  # noqa: E402
from maestro.scheduler.v1 import scheduler_service_pb2 as spb  # noqa: E402
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc  # noqa: E402
from tests import processes  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    fresh_database,
    postgres_cluster,
    redis_instance,
)

E = execution_pb2.EventType
LINEAR_STEPS = ("first", "second", "third")
LINEAR = """
name: bench-linear
inputSchema: {type: object, properties: {n: {type: integer}}}
steps:
  - {id: first, type: task, handler: echo, timeout: 10s, input: {n: inputs.n}}
  - {id: second, type: task, handler: noop, needs: [first], timeout: 10s}
  - {id: third, type: task, handler: echo, needs: [second], timeout: 10s,
     input: {n: inputs.n}}
"""
FANOUT_ITEMS = 100
FANOUT = """
name: bench-fanout
inputSchema: {type: object, properties: {items: {type: array, items: {type: integer}}}}
steps:
  - id: fan
    type: loop
    loop: {items: inputs.items, parallelism: 100, body: {type: task, handler: noop, timeout: 5s}}
  - {id: join, type: task, handler: noop, needs: [fan], timeout: 5s}
"""
SLEEP_SECONDS = 2.0
SLEEPY = f"""
name: bench-sleep
inputSchema: {{type: object, properties: {{n: {{type: integer}}}}}}
steps:
  - {{id: nap, type: task, handler: sleep, config: {{seconds: {SLEEP_SECONDS}}}, timeout: 30s}}
  - {{id: nap2, type: task, handler: sleep, config: {{seconds: {SLEEP_SECONDS}}}, needs: [nap],
     timeout: 30s}}
"""
KILL_LEASE_SECONDS = 2.0
TARGETS = {
    "enqueue_p95_ms": 10.0,
    "sustained_starts_per_s": 2600.0,
    "e2e_per_s": 250.0,
    "fanout_s": 0.25,
    "step_overhead_p50_ms": 5.0,
    "kill_resume_s": KILL_LEASE_SECONDS + 1.0,
}


@dataclass(frozen=True)
class Plan:
    """How much of everything a run does (full or --quick)."""

    enqueue_rate: float = 200.0
    enqueue_seconds: float = 5.0
    ladder: tuple[float, ...] = (50, 100, 200, 400, 800, 1200, 1600, 2400, 3200, 4000, 4800, 6400)
    ladder_step_seconds: float = 3.0
    ladder_max_requests: int = 12_000
    ladder_cap_seconds: float = 150.0
    e2e_executions: int = 1000
    e2e_clients: int = 8
    e2e_cap_seconds: float = 300.0
    executor_concurrency: int = 32
    fanout_runs: int = 5
    serial_executions: int = 100
    kill_executions: int = 10


QUICK = Plan(
    enqueue_seconds=2.0,
    ladder=(100, 200, 400),
    ladder_step_seconds=1.0,
    ladder_cap_seconds=20.0,
    e2e_executions=80,
    e2e_cap_seconds=60.0,
    fanout_runs=2,
    serial_executions=20,
    kill_executions=4,
)


# -- statistics ------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
    }


# -- machine and CPU accounting ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "nproc": nproc,
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "loadavg_start": os.getloadavg(),
        "speed_probe_ms_start": speed_probe(),
    }


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of live processes (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def busy_seconds() -> float:
    """CPU time of the whole machine that was not idle or iowait, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _CLK_TCK


def pids_where(match: Callable[[str, int], bool]) -> list[int]:
    """PIDs whose command line (NULs as spaces) and parent PID satisfy ``match``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = _stat(int(entry.name))
        if fields is not None and match(cmdline, int(fields[1])):
            found.append(int(entry.name))
    return found


def postgres_pids(port: int) -> list[int]:
    """The postmaster listening on ``port`` and its children (backends, WAL writer...)."""
    master = pids_where(lambda cmd, _: "postgres" in cmd and f"-p {port} " in cmd)
    if not master:
        return []
    return [*master, *pids_where(lambda _, ppid: ppid == master[0])]


def redis_pids(port: int) -> list[int]:
    return pids_where(lambda cmd, _: "redis-server" in cmd and f":{port}" in cmd)


class CpuMeter:
    """Cores used per component over an interval, and by everything else."""

    def __init__(self, components: Callable[[], dict[str, list[int]]]) -> None:
        self._components = components
        self._start: tuple[float, float, dict[str, float]] = (0.0, 0.0, {})

    def _sample(self) -> dict[str, float]:
        return {name: cpu_seconds(pids) for name, pids in self._components().items()}

    def start(self) -> None:
        self._start = (time.monotonic(), busy_seconds(), self._sample())

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._start[0]
        busy = busy_seconds() - self._start[1]
        before = self._start[2]
        used = {
            name: max(0.0, seconds - before.get(name, 0.0)) / wall
            for name, seconds in self._sample().items()
        }
        used["(machine busy)"] = busy / wall
        used["(others)"] = max(0.0, busy / wall - sum(v for k, v in used.items() if k[0] != "("))
        return {name: round(value, 2) for name, value in used.items()}


# -- service processes -------------------------------------------------------------------------


@dataclass
class Service:
    """One Maestro service in its own process, on a free loopback port."""

    name: str  # label and log file, e.g. "executor-a"
    module: str  # maestro.services.<module>
    env: dict[str, str]
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    profile: Path | None = None  # run under SAMPLER, collapsed stacks written here on exit

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else -1

    def start(self) -> None:
        prefix = f"MAESTRO_{self.module.upper()}_"
        env = {**os.environ, f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(self.port)}
        env.pop("GRPC_ENABLE_FORK_SUPPORT")
        if _INHERITED_FORK_SUPPORT is not None:
            env["GRPC_ENABLE_FORK_SUPPORT"] = _INHERITED_FORK_SUPPORT
        if self.module != "gateway":
            env[f"{prefix}METRICS_PORT"] = "0"
            env[f"{prefix}DATA_DIR"] = str(self.root / self.name)
        env.update(self.env)
        module = f"maestro.services.{self.module}"
        args = ("-c", SAMPLER, str(self.profile), module) if self.profile else (module,)
        log = self.root / f"{self.name}.log"
        self.process = processes.spawn(*args, env=env, log=log, cwd=self.root)

    async def _ready(self) -> bool:
        if self.module != "gateway":
            return await probe_health(self.address, timeout=0.5) == "SERVING"
        try:
            async with httpx.AsyncClient(timeout=0.5) as client:
                return (await client.get(f"http://{self.address}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await self._ready():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.root / f"{self.name}.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"{self.name} did not become ready:\n{log}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, by PID."""
        assert self.process is not None
        processes.kill(self.process)

    def stop(self) -> None:
        processes.stop(self.process)


# A sampling profiler for a service process (py-spy is not installed, and
# cProfile loses track of SQLAlchemy's greenlets): every 5 ms of the process's
# CPU time (ITIMER_PROF), the Python stack of every thread that is not idle
# (blocked in epoll, a lock or a queue) is counted, under its thread's name;
# the counts are written as collapsed stacks at exit. A thread waiting for the
# GIL counts where it waits, and CPU burnt in C threads (grpc's core) is
# charged to whatever Python runs then, so read shares, not exact times.
SAMPLER = """
import atexit, collections, runpy, signal, sys, threading
out, module = sys.argv[1], sys.argv[2]
sys.argv = [module]
counts = collections.Counter()
IDLE = ("selectors.py:select", "threading.py:wait", "thread.py:_worker", "queue.py:get")
def sample(signum, frame):
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, top in sys._current_frames().items():
        stack = []
        while top is not None:
            stack.append(top.f_code.co_filename + ":" + top.f_code.co_name)
            top = top.f_back
        if not stack or stack[0].endswith(IDLE):
            continue
        name = names.get(ident, "?").split("_")[0].rstrip("0123456789-")
        counts["thread " + name + ";" + ";".join(reversed(stack))] += 1
def dump():
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    with open(out, "w") as f:
        f.writelines(f"{stack} {n}\\n" for stack, n in counts.items())
signal.signal(signal.SIGPROF, sample)
signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
atexit.register(dump)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
_GROUPS = (
    ("sqlalchemy", "sqlalchemy"),
    ("psycopg", "psycopg"),
    ("aiosqlite/sqlite", "sqlite"),
    ("redis client", "/redis/"),
    ("grpc", "/grpc"),
    ("opentelemetry", "opentelemetry"),
    ("protobuf", "google/protobuf"),
    ("logging", "/logging/"),
    ("json", "/json/"),
    ("asyncio", "/asyncio/"),
    ("jsonschema", "jsonschema"),
    ("cel", "celpy"),
    ("maestro", "/maestro/"),
)


def print_profile(path: Path, label: str, top: int = 30) -> None:
    """Where a sampled process spent its CPU: own time by library, own time by
    function, and time inside each Maestro function (callees included)."""
    if not path.exists():
        print(f"  (no profile written for {label})")
        return
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks) or 1
    by_group: Counter[str] = Counter()
    by_self: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    for frames, n in stacks:
        by_thread[frames[0]] += n
        leaf = frames[-1]
        by_group[next((g for g, key in _GROUPS if key in leaf), "other")] += n
        by_self[leaf.rsplit("/", 1)[-1]] += n
        for frame in {f for f in frames if "/maestro/" in f}:
            inclusive[frame.split("/maestro/", 1)[1]] += n
    print(f"--- CPU profile of {label}: {total} busy-thread samples ---")
    for title, table in (
        ("by thread", by_thread),
        ("own time by library", by_group),
        ("own time by function", by_self),
        ("Maestro functions, callees included", inclusive),
    ):
        print(f"  {title}:")
        for name, n in table.most_common(top):
            print(f"    {100 * n / total:5.1f}%  {name}")


class Rig:
    """Compiler and registry for the whole backend run; a fresh scheduler
    (new database) and its executors per scenario; the gateway on demand."""

    def __init__(
        self,
        backend: str,
        root: Path,
        pg: PostgresServer | None,
        redis: RedisServer | None,
        *,
        profile: bool = False,
        receipts: bool = True,
    ) -> None:
        self.backend = backend
        self.receipts = receipts
        self.profile = profile
        self.root = root
        self.pg = pg
        self.redis = redis
        self.policy = Service("policy", "policy", {}, root)
        # Receipts on, as in production: the registry signs each version and
        # the scheduler each finished execution, through the signer.
        self.signer = Service(
            "signer",
            "signer",
            {
                "MAESTRO_SIGNER_POLICY_ADDRESS": self.policy.address,
                "MAESTRO_SIGNER_DATABASE_URL": fresh_database(pg) if pg is not None else "",
            },
            root,
        )
        self.compiler = Service("compiler", "compiler", {}, root)
        self.registry = Service(
            "registry",
            "registry",
            {
                "MAESTRO_REGISTRY_COMPILER_ADDRESS": self.compiler.address,
                "MAESTRO_REGISTRY_POLICY_ADDRESS": self.policy.address,
                "MAESTRO_REGISTRY_SIGNER_ADDRESS": self.signer.address,
            },
            root,
        )
        self.scheduler: Service | None = None
        self.executors: list[Service] = []
        self.gateway: Service | None = None

    def processes(self) -> list[Service]:
        optional = [self.scheduler, self.gateway]
        return [
            self.policy,
            self.signer,
            self.compiler,
            self.registry,
            *self.executors,
            *(s for s in optional if s),
        ]

    def cpu_components(self) -> dict[str, list[int]]:
        """PIDs per component, for :class:`CpuMeter`."""
        parts = {
            "scheduler": [self.scheduler.pid] if self.scheduler else [],
            "executors": [e.pid for e in self.executors],
            "gateway": [self.gateway.pid] if self.gateway else [],
            "registry+compiler+policy+signer": [
                self.registry.pid,
                self.compiler.pid,
                self.policy.pid,
                self.signer.pid,
            ],
            "bench client": [os.getpid()],
        }
        if self.pg is not None:
            parts["postgresql"] = postgres_pids(self.pg.port)
        if self.redis is not None:
            parts["redis"] = redis_pids(self.redis.port)
        return parts

    async def up(self) -> None:
        for service in (self.policy, self.signer, self.compiler, self.registry):
            service.start()
        for service in (self.policy, self.signer, self.compiler, self.registry):
            await service.wait_ready()
        channel = open_channel(
            self.registry.address, caller="bench", services=RegistryClient.SERVICES
        )
        try:
            client = RegistryClient(channel, timeout=30)
            for source, workflow_id in (
                (LINEAR, "bench-linear"),
                (FANOUT, "bench-fanout"),
                (SLEEPY, "bench-sleep"),
            ):
                await client.create_workflow(
                    rpb.CreateWorkflowRequest(
                        source=source_pb2.WorkflowSource(content=source.encode()),
                        workflow_id=workflow_id,
                        request_id=str(uuid.uuid4()),
                    )
                )
                await client.publish_workflow(
                    rpb.PublishWorkflowRequest(
                        name=f"workflows/{workflow_id}", request_id=str(uuid.uuid4())
                    )
                )
        finally:
            await channel.close()

    async def fresh_scheduler(self, tag: str, *, lease_seconds: float | None = None) -> Service:
        """Stops the scenario before (scheduler, executors, gateway) and starts a
        scheduler on an empty database (and an empty Redis)."""
        self.stop_scenario()
        env = {
            "MAESTRO_SCHEDULER_REGISTRY_ADDRESS": self.registry.address,
            "MAESTRO_SCHEDULER_POLICY_ADDRESS": self.policy.address,
            "MAESTRO_SCHEDULER_SIGNER_ADDRESS": self.signer.address if self.receipts else "",
        }
        if self.pg is not None and self.redis is not None:
            self.redis.client().flushall()
            env |= {
                "MAESTRO_SCHEDULER_DATABASE_URL": fresh_database(self.pg),
                "MAESTRO_SCHEDULER_DISPATCH": "redis",
                "MAESTRO_SCHEDULER_REDIS_URL": self.redis.url(),
            }
        else:
            env |= {"MAESTRO_SCHEDULER_DATABASE_URL": "", "MAESTRO_SCHEDULER_DISPATCH": "sql"}
        if lease_seconds is not None:
            env["MAESTRO_SCHEDULER_LEASE_SECONDS"] = str(lease_seconds)
        self.scheduler = Service(f"scheduler-{tag}", "scheduler", env, self.root)
        if self.profile:
            self.scheduler.profile = self.root / f"scheduler-{tag}.stacks"
        self.scheduler.start()
        await self.scheduler.wait_ready()
        return self.scheduler

    async def add_executors(self, count: int, concurrency: int, tag: str) -> list[Service]:
        assert self.scheduler is not None
        started = []
        for i in range(count):
            name = f"executor-{tag}-{'abcdefgh'[len(self.executors)]}"
            executor = Service(
                name,
                "executor",
                {
                    "MAESTRO_EXECUTOR_SCHEDULER_ADDRESS": self.scheduler.address,
                    "MAESTRO_EXECUTOR_CONCURRENCY": str(concurrency),
                    "MAESTRO_EXECUTOR_IDENTITY": name,
                },
                self.root,
            )
            del i
            executor.start()
            self.executors.append(executor)
            started.append(executor)
        for executor in started:
            await executor.wait_ready()
        return started

    async def add_gateway(self) -> Service:
        assert self.scheduler is not None
        nowhere = f"127.0.0.1:{free_port()}"  # signer/executor are not started
        self.gateway = Service(
            "gateway",
            "gateway",
            {
                "MAESTRO_GATEWAY_COMPILER_ADDRESS": self.compiler.address,
                "MAESTRO_GATEWAY_REGISTRY_ADDRESS": self.registry.address,
                "MAESTRO_GATEWAY_SCHEDULER_ADDRESS": self.scheduler.address,
                "MAESTRO_GATEWAY_EXECUTOR_ADDRESS": nowhere,
                "MAESTRO_GATEWAY_POLICY_ADDRESS": self.policy.address,
                "MAESTRO_GATEWAY_SIGNER_ADDRESS": nowhere,
            },
            self.root,
        )
        self.gateway.start()
        await self.gateway.wait_ready()
        return self.gateway

    def stop_scenario(self) -> None:
        for service in [*self.executors, self.gateway, self.scheduler]:
            if service is not None:
                service.stop()
        if self.scheduler is not None and self.scheduler.profile is not None:
            print_profile(self.scheduler.profile, f"{self.backend} {self.scheduler.name}")
        self.executors, self.gateway, self.scheduler = [], None, None

    def stop_all(self) -> None:
        self.stop_scenario()
        for service in (self.registry, self.compiler, self.policy):
            service.stop()


# -- load generation -----------------------------------------------------------------------------


@dataclass
class OpenLoop:
    """Outcome of one open-loop run at a fixed rate."""

    rate: float
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # from the scheduled send time
    lag_ms: list[float] = field(default_factory=list)  # actual send - scheduled send
    seconds: float = 0.0  # first scheduled send to last reply

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.sent if self.sent else 0.0

    @property
    def achieved(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def report(self) -> dict[str, Any]:
        return {
            "offered_per_s": self.rate,
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "error_rate": round(self.error_rate, 4),
            "achieved_per_s": round(self.achieved, 1),
            "latency_ms": summary(self.latencies_ms),
            "send_lag_ms": summary(self.lag_ms),
        }


async def open_loop(
    send: Callable[[int], Awaitable[None]], rate: float, count: int, drain_seconds: float = 15.0
) -> OpenLoop:
    """Sends ``count`` requests at ``rate``/s on a fixed clock, each in its own
    task, never waiting for a reply before the next send."""
    loop = asyncio.get_running_loop()
    result = OpenLoop(rate=rate, sent=count)
    start = loop.time() + 0.02
    last_done = start

    async def one(index: int, due: float) -> None:
        nonlocal last_done
        result.lag_ms.append((loop.time() - due) * 1000)
        try:
            await send(index)
        except grpc.aio.AioRpcError as exc:
            result.errors[exc.code().name] += 1
        except httpx.HTTPError as exc:
            result.errors[type(exc).__name__] += 1
        except RuntimeError as exc:  # a non-202 REST answer
            result.errors[str(exc)] += 1
        else:
            result.ok += 1
            result.latencies_ms.append((loop.time() - due) * 1000)
        last_done = max(last_done, loop.time())

    tasks = []
    for index in range(count):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    _, pending = await asyncio.wait(tasks, timeout=drain_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    result.errors["UNFINISHED"] += len(pending)
    if not result.errors["UNFINISHED"]:
        del result.errors["UNFINISHED"]
    result.seconds = last_done - start
    return result


def start_request(workflow: str, inputs: dict[str, Any]) -> spb.StartExecutionRequest:
    request = spb.StartExecutionRequest(
        workflow=f"workflows/{workflow}", request_id=str(uuid.uuid4())
    )
    request.inputs.update(inputs)
    return request


def grpc_sender(stub: spb_grpc.SchedulerServiceStub) -> Callable[[int], Awaitable[None]]:
    async def send(index: int) -> None:
        await stub.StartExecution(start_request("bench-linear", {"n": index}), timeout=10)

    return send


def rest_sender(client: httpx.AsyncClient) -> Callable[[int], Awaitable[None]]:
    async def send(index: int) -> None:
        response = await client.post(
            "/api/workflows/bench-linear/execute",
            json={"inputs": {"n": index}},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if response.status_code != 202:
            raise RuntimeError(f"HTTP {response.status_code}")

    return send


async def ladder(send: Callable[[int], Awaitable[None]], plan: Plan, label: str) -> dict[str, Any]:
    """Rising open-loop rates until errors >= 1 % or achieved < 90 % of offered."""
    began = time.monotonic()
    steps, best = [], 0.0
    for rate in plan.ladder:
        if time.monotonic() - began > plan.ladder_cap_seconds:
            print(f"  {label} ladder: time cap reached", flush=True)
            break
        count = min(int(rate * plan.ladder_step_seconds), plan.ladder_max_requests)
        step = await open_loop(send, rate, count)
        good = step.error_rate < 0.01 and step.achieved >= 0.9 * rate
        steps.append({**step.report(), "good": good})
        print(
            f"  {label} {rate:6.0f}/s offered: {step.achieved:7.1f}/s achieved, "
            f"errors {step.error_rate:.2%}, p50 {percentile(step.latencies_ms, 0.5):.1f} ms, "
            f"p99 {percentile(step.latencies_ms, 0.99):.1f} ms"
            f"{'' if good else '  <- limit'}",
            flush=True,
        )
        if not good:
            break
        best = rate
        await asyncio.sleep(1.0)
    return {"sustained_per_s": best, "steps": steps}


# -- scenarios ---------------------------------------------------------------------------------


def scheduler_stub(address: str) -> tuple[grpc.aio.Channel, spb_grpc.SchedulerServiceStub]:
    """A bare channel and stub: the load generator shares the machine, so it
    carries no client interceptors (no tracing) to keep its own cost low."""
    channel = grpc.aio.insecure_channel(
        address, options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    )
    return channel, spb_grpc.SchedulerServiceStub(channel)


async def enqueue(rig: Rig, plan: Plan) -> dict[str, Any]:
    scheduler = await rig.fresh_scheduler("enqueue")
    gateway = await rig.add_gateway()
    channel, stub = scheduler_stub(scheduler.address)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    meter = CpuMeter(rig.cpu_components)
    out: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{gateway.address}", limits=limits, timeout=10
        ) as http:
            senders = {"grpc": grpc_sender(stub), "rest": rest_sender(http)}
            count = int(plan.enqueue_rate * plan.enqueue_seconds)
            for path, send in senders.items():
                for i in range(50):  # warm-up: connections, plan cache
                    await send(-1 - i)
                meter.start()
                run = await open_loop(send, plan.enqueue_rate, count)
                out[f"{path}_fixed"] = {**run.report(), "cpu_cores": meter.stop()}
                lat = out[f"{path}_fixed"]["latency_ms"]
                print(
                    f"  {path} at {plan.enqueue_rate:.0f}/s: p50 {lat['p50']:.2f} ms, "
                    f"p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                    f"errors {run.error_rate:.2%}",
                    flush=True,
                )
            for path, send in senders.items():
                meter.start()
                out[f"{path}_ladder"] = await ladder(send, plan, path)
                out[f"{path}_ladder"]["cpu_cores"] = meter.stop()
    finally:
        await channel.close()
    return out


async def follow(
    stub: spb_grpc.SchedulerServiceStub, name: str, timeout: float = 120.0
) -> list[execution_pb2.ExecutionEvent]:
    """All events of ``name`` until (and with) its terminal event."""
    events = []
    call = stub.StreamExecutionEvents(
        spb.StreamExecutionEventsRequest(name=name, follow=True), timeout=timeout
    )
    # The server ends the stream after the terminal event; reading to the end
    # (rather than cancelling) is what a well-behaved client does.
    async for item in call:
        events.append(item.event)
    return events


async def run_one(
    stub: spb_grpc.SchedulerServiceStub, workflow: str, inputs: dict[str, Any]
) -> tuple[float, list[execution_pb2.ExecutionEvent]]:
    """Starts an execution and follows it to the end: (seconds, events)."""
    started = time.perf_counter()
    reply = await stub.StartExecution(start_request(workflow, inputs), timeout=10)
    events = await follow(stub, reply.execution.name)
    return time.perf_counter() - started, events


def succeeded(events: list[execution_pb2.ExecutionEvent]) -> bool:
    return bool(events) and events[-1].type == E.EVENT_TYPE_EXECUTION_SUCCEEDED


async def e2e(rig: Rig, plan: Plan, executors: int) -> dict[str, Any]:
    scheduler = await rig.fresh_scheduler(f"e2e{executors}")
    await rig.add_executors(executors, plan.executor_concurrency, f"e2e{executors}")
    channel, stub = scheduler_stub(scheduler.address)
    latencies: list[float] = []
    journals: list[list[execution_pb2.ExecutionEvent]] = []
    failures: Counter[str] = Counter()
    meter = CpuMeter(rig.cpu_components)
    try:
        # Warm-up; the first start alone: concurrent first starts of a version on a
        # fresh PostgreSQL database race to store its plan (one gets INTERNAL).
        await run_one(stub, "bench-linear", {"n": -1})
        await asyncio.gather(*(run_one(stub, "bench-linear", {"n": -i}) for i in range(2, 9)))
        next_index = 0
        deadline = time.monotonic() + plan.e2e_cap_seconds

        async def client() -> None:
            nonlocal next_index
            while next_index < plan.e2e_executions and time.monotonic() < deadline:
                index, next_index = next_index, next_index + 1
                try:
                    seconds, events = await run_one(stub, "bench-linear", {"n": index})
                except grpc.aio.AioRpcError as exc:
                    failures[exc.code().name] += 1
                    continue
                if not succeeded(events):
                    failures["NOT_SUCCEEDED"] += 1
                latencies.append(seconds * 1000)
                journals.append(events)

        meter.start()
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(plan.e2e_clients)))
        wall = time.perf_counter() - began
        cpu = meter.stop()
    finally:
        await channel.close()
    done = sum(1 for j in journals if succeeded(j))
    result: dict[str, Any] = {
        "executors": executors,
        "concurrency": plan.executor_concurrency,
        "clients": plan.e2e_clients,
        "completed": done,
        "failures": dict(failures),
        "seconds": round(wall, 2),
        "per_s": round(done / wall, 1),
        "latency_ms": summary(latencies),
        "journal": journal_overheads(journals, LINEAR_STEPS),
        "cpu_cores": cpu,
    }
    print(
        f"  e2e, {executors} executor(s): {result['per_s']}/s ({done} in {wall:.1f} s), "
        f"latency p50 {result['latency_ms']['p50']:.1f} ms p95 "
        f"{result['latency_ms']['p95']:.1f} ms, failures {dict(failures)}",
        flush=True,
    )
    return result


def _ms(event: execution_pb2.ExecutionEvent) -> float:
    return event.time.ToNanoseconds() / 1e6


def journal_overheads(
    journals: list[list[execution_pb2.ExecutionEvent]], chain: tuple[str, ...]
) -> dict[str, Any]:
    """Per-step gaps in the journal: dispatch (STEP_SCHEDULED -> first
    STEP_STARTED), hand-off (STEP_SUCCEEDED of step k -> STEP_STARTED of step
    k+1), run (STEP_STARTED -> STEP_SUCCEEDED) and execution duration."""
    dispatch, handoff, run, duration = [], [], [], []
    for events in journals:
        scheduled: dict[str, float] = {}
        started: dict[str, float] = {}
        finished: dict[str, float] = {}
        for event in events:
            if event.type == E.EVENT_TYPE_STEP_SCHEDULED:
                scheduled.setdefault(event.subject, _ms(event))
            elif event.type == E.EVENT_TYPE_STEP_STARTED:
                started.setdefault(event.subject, _ms(event))
            elif event.type == E.EVENT_TYPE_STEP_SUCCEEDED:
                finished[event.subject] = _ms(event)
        dispatch += [started[s] - t for s, t in scheduled.items() if s in started]
        run += [finished[s] - t for s, t in started.items() if s in finished]
        handoff += [
            started[b] - finished[a]
            for a, b in itertools.pairwise(chain)
            if a in finished and b in started
        ]
        if events and events[0].type == E.EVENT_TYPE_EXECUTION_STARTED:
            duration.append(_ms(events[-1]) - _ms(events[0]))
    return {
        "dispatch_ms": summary(dispatch),
        "handoff_ms": summary(handoff),
        "run_ms": summary(run),
        "execution_ms": summary(duration),
    }


async def serial(rig: Rig, plan: Plan) -> dict[str, Any]:
    """Per-step overhead with nothing else running: one client runs the
    3-step workflow ``plan.serial_executions`` times, one execution at a
    time, on the scheduler the 1-executor e2e run left (its queue is empty);
    the journal gaps are then the orchestration's own, not queueing behind
    other executions as in the e2e runs."""
    assert rig.scheduler is not None
    channel, stub = scheduler_stub(rig.scheduler.address)
    journals: list[list[execution_pb2.ExecutionEvent]] = []
    latencies: list[float] = []
    try:
        await run_one(stub, "bench-linear", {"n": -1})  # warm-up
        for index in range(plan.serial_executions):
            seconds, events = await run_one(stub, "bench-linear", {"n": index})
            if succeeded(events):
                journals.append(events)
                latencies.append(seconds * 1000)
    finally:
        await channel.close()
    result = {
        "executions": len(journals),
        "latency_ms": summary(latencies),
        "journal": journal_overheads(journals, LINEAR_STEPS),
    }
    print(
        f"  serial: {len(journals)} executions, latency p50 {result['latency_ms']['p50']:.1f} ms",
        flush=True,
    )
    return result


async def fanout(rig: Rig, plan: Plan) -> dict[str, Any]:
    """On the scenario left by the 1-executor e2e run (its queue is empty)."""
    assert rig.scheduler is not None
    channel, stub = scheduler_stub(rig.scheduler.address)
    inputs = {"items": list(range(FANOUT_ITEMS))}
    client_s, journal_s = [], []
    failures = 0
    try:
        await run_one(stub, "bench-fanout", inputs)  # warm-up: plan fetch
        for _ in range(plan.fanout_runs):
            seconds, events = await run_one(stub, "bench-fanout", inputs)
            if not succeeded(events):
                failures += 1
                continue
            client_s.append(seconds)
            journal_s.append((_ms(events[-1]) - _ms(events[0])) / 1000)
    finally:
        await channel.close()
    result = {
        "items": FANOUT_ITEMS,
        "runs": plan.fanout_runs,
        "failures": failures,
        "client_s": [round(s, 3) for s in client_s],
        "journal_s": [round(s, 3) for s in journal_s],
        "client_median_s": percentile(client_s, 0.5),
        "journal_median_s": percentile(journal_s, 0.5),
    }
    print(
        f"  fan-out x{FANOUT_ITEMS}: median {result['client_median_s']:.3f} s client, "
        f"{result['journal_median_s']:.3f} s journal, runs {result['client_s']}",
        flush=True,
    )
    return result


async def _wait_for_leases(
    journals: dict[str, list[execution_pb2.ExecutionEvent]], count: int, timeout: float
) -> Counter[str]:
    """Waits until ``count`` first steps are leased; returns leases per worker."""
    deadline = time.monotonic() + timeout
    while True:
        holders: Counter[str] = Counter(
            str(e.data["worker_identity"])
            for events in journals.values()
            for e in events
            if e.type == E.EVENT_TYPE_STEP_STARTED and e.subject == "nap"
        )
        if sum(holders.values()) >= count or time.monotonic() > deadline:
            return holders
        await asyncio.sleep(0.02)


async def worker_kill(rig: Rig, plan: Plan) -> dict[str, Any]:
    scheduler = await rig.fresh_scheduler("kill", lease_seconds=KILL_LEASE_SECONDS)
    executors = await rig.add_executors(2, 16, "kill")
    channel, stub = scheduler_stub(scheduler.address)
    journals: dict[str, list[execution_pb2.ExecutionEvent]] = {}

    async def watch(name: str) -> None:
        call = stub.StreamExecutionEvents(
            spb.StreamExecutionEventsRequest(name=name, follow=True), timeout=90
        )
        async for item in call:
            journals[name].append(item.event)

    try:
        watchers = []
        for i in range(plan.kill_executions):
            reply = await stub.StartExecution(start_request("bench-sleep", {"n": i}), timeout=10)
            journals[reply.execution.name] = []
            watchers.append(asyncio.create_task(watch(reply.execution.name)))
        holders = await _wait_for_leases(journals, plan.kill_executions, timeout=20)
        await asyncio.sleep(0.5)  # mid-sleep: both heartbeating
        by_name = {e.name: e for e in executors}
        victim = by_name[holders.most_common(1)[0][0]]
        survivor = next(e for e in executors if e is not victim)
        victim.kill()
        killed_at = time.time()
        await asyncio.wait_for(asyncio.gather(*watchers), timeout=60)
    finally:
        await channel.close()
    resumed = sorted(
        e.time.ToNanoseconds() / 1e9 - killed_at
        for events in journals.values()
        for e in events
        if e.type == E.EVENT_TYPE_STEP_STARTED
        and float(e.data["delivery"]) >= 2  # type: ignore[arg-type]
        and e.data["worker_identity"] == survivor.name
    )
    result = {
        "executions": plan.kill_executions,
        "lease_seconds": KILL_LEASE_SECONDS,
        "held_by_victim": holders[victim.name],
        "held_by_survivor": holders[survivor.name],
        "redelivered": len(resumed),
        "all_succeeded": all(succeeded(j) for j in journals.values()),
        "first_resume_s": resumed[0] if resumed else float("nan"),
        "last_resume_s": resumed[-1] if resumed else float("nan"),
    }
    print(
        f"  worker kill: victim held {result['held_by_victim']}, redelivered "
        f"{len(resumed)}; resume first {result['first_resume_s']:.2f} s, last "
        f"{result['last_resume_s']:.2f} s after the kill (lease {KILL_LEASE_SECONDS} s); "
        f"all succeeded: {result['all_succeeded']}",
        flush=True,
    )
    return result


SCENARIOS = ("enqueue", "e2e1", "fanout", "serial", "e2e2", "kill")


async def run_backend(
    backend: str,
    plan: Plan,
    root: Path,
    *,
    profile: bool = False,
    scenarios: tuple[str, ...] = SCENARIOS,
    receipts: bool = True,
) -> dict[str, Any]:
    with contextlib.ExitStack() as servers:
        pg = redis = None
        if backend == "production":
            pg = servers.enter_context(postgres_cluster(durable=True))
            redis = servers.enter_context(redis_instance())
        rig = Rig(backend, root, pg, redis, profile=profile, receipts=receipts)
        result: dict[str, Any] = {}
        try:
            await rig.up()
            if "enqueue" in scenarios:
                print(f"[{backend}] enqueue", flush=True)
                result["enqueue"] = await enqueue(rig, plan)
            if "e2e1" in scenarios or "fanout" in scenarios or "serial" in scenarios:
                print(f"[{backend}] end-to-end", flush=True)
                result["e2e_1"] = await e2e(rig, plan, executors=1)
            if "fanout" in scenarios:
                print(f"[{backend}] fan-out", flush=True)
                result["fanout"] = await fanout(rig, plan)
            if "serial" in scenarios:
                print(f"[{backend}] per-step overhead, one execution at a time", flush=True)
                result["serial"] = await serial(rig, plan)
            if "e2e2" in scenarios:
                result["e2e_2"] = await e2e(rig, plan, executors=2)
            if "kill" in scenarios:
                print(f"[{backend}] worker kill", flush=True)
                result["kill"] = await worker_kill(rig, plan)
            return result
        finally:
            rig.stop_all()


# -- report --------------------------------------------------------------------------------------


def verdict(value: float, target: float, *, lower_is_better: bool) -> str:
    if math.isnan(value):
        return "n/a"
    ratio = value / target
    met = value <= target if lower_is_better else value >= target
    return f"{ratio:.2f}x target, {'met' if met else 'MISSED'}"


def rows(result: dict[str, Any], backend: str) -> Iterator[tuple[str, str, str, str]]:
    if "enqueue" in result:
        yield from _enqueue_rows(result["enqueue"], backend)
    yield from _run_rows(result)


def _enqueue_rows(enq: dict[str, Any], backend: str) -> Iterator[tuple[str, str, str, str]]:
    for path in ("grpc", "rest"):
        lat = enq[f"{path}_fixed"]["latency_ms"]
        yield (
            f"enqueue {path} @200/s p50/p95/p99",
            f"{lat['p50']:.2f} / {lat['p95']:.2f} / {lat['p99']:.2f} ms",
            "p95 < 10 ms" if path == "grpc" else "-",
            verdict(lat["p95"], TARGETS["enqueue_p95_ms"], lower_is_better=True)
            if path == "grpc"
            else "",
        )
    for path in ("grpc", "rest"):
        best = enq[f"{path}_ladder"]["sustained_per_s"]
        target = path == "grpc" and backend == "production"
        yield (
            f"sustained starts {path} (<1% err)",
            f"{best:.0f}/s",
            ">= 2600/s (PostgreSQL)" if path == "grpc" else "-",
            verdict(best, TARGETS["sustained_starts_per_s"], lower_is_better=False)
            if target
            else "",
        )


def _run_rows(result: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    runs = [key for key in ("e2e_1", "e2e_2") if key in result]
    for key in runs:
        run = result[key]
        yield (
            f"e2e, {run['executors']} executor(s) x{run['concurrency']}",
            f"{run['per_s']:.1f}/s; latency p50 {run['latency_ms']['p50']:.1f} ms, "
            f"p95 {run['latency_ms']['p95']:.1f} ms",
            ">= 250/s",
            verdict(run["per_s"], TARGETS["e2e_per_s"], lower_is_better=False),
        )
    if "fanout" in result:
        fan = result["fanout"]
        yield (
            f"fan-out x{fan['items']} + join (median of {fan['runs']})",
            f"{fan['client_median_s']:.3f} s (journal {fan['journal_median_s']:.3f} s)",
            "<= 0.25 s",
            verdict(fan["client_median_s"], TARGETS["fanout_s"], lower_is_better=True),
        )
    for key in runs:
        journal, executors = result[key]["journal"], result[key]["executors"]
        yield from _step_gap_rows(journal, f"({executors} exec)")
        for gap, label in (("run_ms", "step started->succeeded"), ("execution_ms", "execution")):
            yield _journal_row(f"{label}, journal ({executors} exec)", journal[gap], target=False)
    if "serial" in result:
        yield from _step_gap_rows(result["serial"]["journal"], "(one execution at a time)")
        s = result["serial"]["latency_ms"]
        yield (
            "3-step execution, one at a time, p50/p95",
            f"{s['p50']:.1f} / {s['p95']:.1f} ms",
            "-",
            "",
        )
    if "kill" not in result:
        return
    kill = result["kill"]
    yield (
        f"worker kill -> resume first/last ({kill['redelivered']} tasks)",
        f"{kill['first_resume_s']:.2f} / {kill['last_resume_s']:.2f} s",
        f"<= {TARGETS['kill_resume_s']:.0f} s (lease+1)",
        verdict(kill["last_resume_s"], TARGETS["kill_resume_s"], lower_is_better=True),
    )


def _step_gap_rows(journal: dict[str, Any], where: str) -> Iterator[tuple[str, str, str, str]]:
    """The per-step overhead rows (dispatch and hand-off) of a run's journal."""
    for gap, label in (("dispatch_ms", "scheduled->started"), ("handoff_ms", "done->next started")):
        yield _journal_row(f"step {label} {where}", journal[gap], target=True)


def _journal_row(label: str, s: dict[str, float], *, target: bool) -> tuple[str, str, str, str]:
    """A p50/p99 row; with ``target``, against the per-step overhead target."""
    figure = f"{s['p50']:.1f} / {s['p99']:.1f} ms"
    if not target:
        return f"{label} p50/p99", figure, "-", ""
    return (
        f"{label} p50/p99",
        figure,
        "p50 < 5 ms",
        verdict(s["p50"], TARGETS["step_overhead_p50_ms"], lower_is_better=True),
    )


def print_report(backend: str, result: dict[str, Any]) -> None:
    table = list(rows(result, backend))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    print(f"\n== {backend} ==")
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print("CPU (cores used, of the machine's):")
    cpu_of: dict[str, dict[str, float]] = {}
    if "enqueue" in result:
        cpu_of["enqueue grpc @200/s"] = result["enqueue"]["grpc_fixed"]["cpu_cores"]
        cpu_of["enqueue grpc ladder"] = result["enqueue"]["grpc_ladder"]["cpu_cores"]
    for key, label in (("e2e_1", "e2e 1 executor"), ("e2e_2", "e2e 2 executors")):
        if key in result:
            cpu_of[label] = result[key]["cpu_cores"]
    for label, cpu in cpu_of.items():
        used = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v >= 0.01)
        print(f"  {label}: {used}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else Plan()
    if args.e2e_executions:
        plan = replace(plan, e2e_executions=args.e2e_executions)
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    backends = ["embedded", "production"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "receipts": not args.no_receipts,
        "backends": {},
    }
    print(json.dumps(report["machine"]), flush=True)
    root = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    try:
        for backend in backends:
            directory = root / backend
            directory.mkdir()
            report["backends"][backend] = await run_backend(
                backend,
                plan,
                directory,
                profile=args.profile,
                scenarios=scenarios,
                receipts=not args.no_receipts,
            )
    finally:
        if args.keep_logs:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["machine"]["speed_probe_ms_end"] = speed_probe()
    for backend, result in report["backends"].items():
        print_report(backend, result)
    probes = report["machine"]
    print(
        f"speed probe {probes['speed_probe_ms_start']} ms at the start, "
        f"{probes['speed_probe_ms_end']} ms at the end"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--out", help="write every figure as JSON to this file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each scheduler's stacks and print where it spends its CPU "
        "(a diagnosis run; the sampling costs ~1-3 %%)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (fanout runs after e2e1)",
    )
    parser.add_argument(
        "--e2e-executions", type=int, default=0, help="executions per e2e run (default: plan's)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the services' logs (prints where)"
    )
    parser.add_argument(
        "--no-receipts",
        action="store_true",
        help="the scheduler signs no execution receipts (to measure what signing costs)",
    )
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(figures, indent=2, default=str))
