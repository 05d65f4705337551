"""`maestro serve all`: every service in one process, each on its own port,
each SERVING; SIGTERM stops the process cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from maestro.runtime.clients import probe_health
from maestro.runtime.settings import GRPC_SERVICES
from tests.conftest import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_all_services_in_one_process(tmp_path: Path) -> None:
    env = dict(os.environ)
    *chosen, gateway_port = free_ports(2 * len(GRPC_SERVICES) + 1)
    ports = dict(zip(GRPC_SERVICES, chosen, strict=False))
    for svc, metrics_port in zip(GRPC_SERVICES, chosen[len(GRPC_SERVICES) :], strict=True):
        env[f"MAESTRO_{svc.upper()}_PORT"] = str(ports[svc])
        env[f"MAESTRO_{svc.upper()}_METRICS_PORT"] = str(metrics_port)
    # One process: peers are wired through the same settings the mesh uses.
    env["MAESTRO_REGISTRY_COMPILER_ADDRESS"] = f"127.0.0.1:{ports['compiler']}"
    env["MAESTRO_EXECUTOR_SCHEDULER_ADDRESS"] = f"127.0.0.1:{ports['scheduler']}"
    env["MAESTRO_GATEWAY_PORT"] = str(gateway_port)
    for svc, port in ports.items():
        env[f"MAESTRO_GATEWAY_{svc.upper()}_ADDRESS"] = f"127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                str(Path(sys.executable).with_name("maestro")),
                "serve",
                "all",
                "--data-dir",
                str(tmp_path),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        statuses: list[str] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            statuses = list(
                await asyncio.gather(
                    *(probe_health(f"127.0.0.1:{p}", timeout=0.5) for p in ports.values())
                )
            )
            if all(s == "SERVING" for s in statuses):
                break
            await asyncio.sleep(0.2)
        assert statuses == ["SERVING"] * len(ports), log.read_text()
        async with httpx.AsyncClient(timeout=2) as http:
            health = (await http.get(f"http://127.0.0.1:{gateway_port}/api/health")).json()
        assert {s["service"]: s["status"] for s in health["services"]} == dict.fromkeys(
            GRPC_SERVICES, "SERVING"
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 10) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
