"""Background work that repeats on an interval, owned by a server's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("maestro.periodic")


async def woken(event: asyncio.Event, timeout: float) -> bool:
    """Waits until ``event`` is set or ``timeout`` seconds pass; True when set.

    ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 ``wait_for``
    can swallow a cancellation of the waiting task when the event is set at
    the same moment, and a background loop cancelled that way runs on while
    whoever cancelled it waits for it for ever.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Periodic:
    """Calls ``fn`` every ``interval`` seconds until stopped.

    A failing call is logged and does not stop the schedule; ``stop`` cancels the
    pending wait (or the running call) and returns once the task has ended.
    A call that swallows the cancellation (``asyncio.wait_for`` on Python 3.11
    can, when what it waits for completes as it is cancelled) still ends the
    schedule: the loop checks that it is stopping after every call, where it
    used to sleep again and leave ``stop`` waiting for ever.
    """

    def __init__(self, name: str, interval: float, fn: Callable[[], Awaitable[object]]) -> None:
        self._name = name
        self._interval = interval
        self._fn = fn
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._interval)
            try:
                await self._fn()
            except Exception:
                log.exception("periodic task %s failed", self._name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
