"""Bounded teardown steps that say what hung.

A fixture's stop that never finishes shows up as a pytest-timeout in
teardown, whose dump holds only the threads' stacks: the main thread idle in
the event loop, none of the coroutines that wait. ``stop_within`` fails the
step after ``seconds`` instead, naming it and printing the stack of every
asyncio task still pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

STOP_SECONDS = 15.0


def _await_chain(awaitable: Any) -> list[str]:
    """Where a suspended coroutine waits, down its chain of awaits (a task's
    own stack shows its outermost frame only)."""
    lines = []
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            frame = getattr(awaitable, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "ag_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
        )
    return lines


def _task_stacks() -> str:
    out = []
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not current:
            out.append(f"--- task {task.get_name()}")
            out.extend(_await_chain(task.get_coro()))
    return "\n".join(out)


async def stop_within(
    name: str, stopping: Awaitable[object], seconds: float = STOP_SECONDS
) -> None:
    """Awaits ``stopping``; after ``seconds`` fails with every pending task's
    stack (the stop's own included, taken before it is cancelled)."""
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        task.result()
        return
    stacks = _task_stacks()
    task.cancel()
    raise AssertionError(
        f"{name} did not stop within {seconds} s; pending asyncio tasks:\n{stacks}"
    )
