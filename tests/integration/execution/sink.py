"""A local HTTP service standing in for the outside world: it records every
request's ``Idempotency-Key`` and applies each key's effect once, fails on
demand, and answers slowly on demand. Runs in the test process (uvicorn on a
free loopback port), so it outlives executors the tests kill."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class Sink:
    """What the sink saw."""

    port: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    """Requests per idempotency key (redeliveries count)."""
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The first body per key: the effect, applied once."""
    tries: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Calls per ``{execution}/{step}`` (the key without its attempt)."""
    in_flight: int = 0
    """``/record`` requests received and not answered yet."""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Returns once ``predicate()`` holds (checked on every request)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def record(self, request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key", "")
        body = await request.json() if await request.body() else {}
        self.calls[key] += 1
        self.in_flight += 1
        await self._notify()
        try:
            delay = float(request.query_params.get("delay", "0"))
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        applied = key not in self.effects
        if applied:
            self.effects[key] = body
        await self._notify()
        return JSONResponse({"key": key, "applied": applied, "echo": body})

    async def flaky(self, request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key", "")
        step = key.rsplit("/", 1)[0]
        self.tries[step] += 1
        failures = int(request.query_params.get("failures", "1"))
        if self.tries[step] <= failures:
            return JSONResponse({"error": "try again"}, status_code=503)
        return JSONResponse({"tries": self.tries[step]})

    async def status(self, request: Request) -> JSONResponse:
        code = int(request.path_params["code"])
        return JSONResponse({"status": code}, status_code=code)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/record", self.record, methods=["GET", "POST"]),
                Route("/flaky", self.flaky, methods=["GET", "POST"]),
                Route("/status/{code:int}", self.status, methods=["GET", "POST"]),
            ]
        )


@contextlib.asynccontextmanager
async def running_sink(sink: Sink | None = None) -> AsyncIterator[Sink]:
    """Serves ``sink`` (a new one by default) until the block ends."""
    sink = sink or Sink()
    sink.port = free_port()
    config = uvicorn.Config(
        sink.app(), host="127.0.0.1", port=sink.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield sink
    finally:
        server.should_exit = True
        await task
