"""The REST gateway in front of a running mesh: executing through REST and
following an execution over Server-Sent Events across disconnects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.server import GatewayServer, create_server
from tests.conftest import free_port
from tests.integration.execution.support import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STEPS = """
name: ticker
inputSchema: {type: object, properties: {items: {type: array, items: {type: integer}}}}
steps:
  - id: tick
    type: loop
    loop:
      items: inputs.items
      parallelism: 1
      body: {type: task, handler: sleep, config: {seconds: 0.05}, timeout: 5s}
  - {id: done, type: task, handler: echo, needs: [tick], timeout: 5s, input: {n: "1"}}
"""


@pytest.fixture
async def gateway(mesh: Mesh) -> AsyncIterator[GatewayServer]:
    others = {f"{s}_address": f"127.0.0.1:{free_port()}" for s in ("policy", "signer")}
    server = await create_server(
        GatewaySettings(
            port=0,
            compiler_address=f"127.0.0.1:{mesh.compiler.port}",
            registry_address=f"127.0.0.1:{mesh.registry.port}",
            scheduler_address=mesh.scheduler_address,
            executor_address=f"127.0.0.1:{mesh.executors[0].port}",
            **others,
        ),
        tracer_provider=TracerProvider(),
    )
    try:
        yield server
    finally:
        await server.stop()


async def _frames(response: httpx.Response, limit: int) -> list[dict[str, str]]:
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line == "":
            if frame:
                frames.append(frame)
                frame = {}
                if len(frames) >= limit:
                    break
            continue
        key, _, value = line.partition(":")
        frame[key] = value.removeprefix(" ")
    return frames


async def test_sse_reconnects_with_last_event_id_and_sees_every_event_once_in_order(
    mesh: Mesh, gateway: GatewayServer
) -> None:
    await mesh.publish(STEPS, "ticker")
    url = f"http://127.0.0.1:{gateway.port}"
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        started = await client.post(
            "/api/workflows/ticker/execute",
            json={"inputs": {"items": list(range(8))}},
            headers={"Idempotency-Key": "11111111-2222-4333-8444-555555555555"},
        )
        assert started.status_code == 202, started.text
        execution_id = started.json()["executionId"]
        seen: list[dict[str, str]] = []
        connections = 0
        while not seen or seen[-1]["event"] != "dev.maestro.execution.succeeded":
            headers = {"Last-Event-ID": seen[-1]["id"]} if seen else {}
            async with client.stream(
                "GET", f"/api/executions/{execution_id}/stream", headers=headers
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                # Take a few events, then hang up mid-stream.
                seen.extend(await _frames(response, limit=3))
            connections += 1
            assert connections < 100
        assert connections > 3
        ids = [int(frame["id"]) for frame in seen]
        assert ids == list(range(1, len(ids) + 1))
        journal = (await client.get(f"/api/executions/{execution_id}/events")).json()
        assert [e["id"] for e in journal["events"]] == [frame["id"] for frame in seen]
        assert [e["type"] for e in journal["events"]] == [frame["event"] for frame in seen]
