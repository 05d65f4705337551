"""Server-Sent Events: framing, and a source read with keep-alive ticks.

The source (a gRPC server stream) is read in a task of its own, so the
response can send a keep-alive comment while the source is idle and, when the
client goes away, :meth:`KeepAliveStream.close` cancels that task while it
waits in the gRPC read, which cancels the gRPC call itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")

MEDIA_TYPE = "text/event-stream"
KEEPALIVE = ": keep-alive\n\n"
HEADERS = {
    "Cache-Control": "no-cache",
    # nginx (and ingress controllers built on it) would buffer the stream.
    "X-Accel-Buffering": "no",
}


def sse_event(data: str, *, event: str = "", event_id: str = "") -> str:
    """One SSE event: ``id:``, ``event:`` and one ``data:`` line per line of
    ``data``, then the blank line that dispatches it."""
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


class _End:
    """The source ended normally."""


class KeepAliveStream(Generic[T]):
    """Iterates ``source`` from a task of its own (created here, so it runs in
    the caller's context: request id and identity); iteration yields each item,
    or None each time ``interval`` seconds pass without one, and re-raises what
    the source raised. Iterate once."""

    def __init__(self, source: AsyncIterator[T], interval: float, *, buffer: int = 256) -> None:
        self._interval = interval
        self._queue: asyncio.Queue[tuple[T] | Exception | _End] = asyncio.Queue(buffer)
        self._task = asyncio.create_task(self._pump(source), name="sse-source")

    async def _pump(self, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                await self._queue.put((item,))
        except Exception as exc:  # handed to the reader, which raises it
            await self._queue.put(exc)
        else:
            await self._queue.put(_End())

    def close(self) -> None:
        """Stops reading the source (idempotent)."""
        self._task.cancel()

    @property
    def reading(self) -> bool:
        """Whether the source is still being read."""
        return not self._task.done()

    async def __aiter__(self) -> AsyncIterator[T | None]:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._interval):
                        entry = await self._queue.get()
                except TimeoutError:
                    yield None
                    continue
                if isinstance(entry, _End):
                    return
                if isinstance(entry, Exception):
                    raise entry
                yield entry[0]
        finally:
            self.close()
