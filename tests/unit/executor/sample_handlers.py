"""Handlers the tests install through a ``maestro.handlers`` entry point."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from maestro.services.executor.handlers import HandlerError, TaskContext


async def declined(ctx: TaskContext) -> Mapping[str, Any]:
    """Always declines, non-retryably."""
    raise HandlerError(
        "CARD_DECLINED", "the card was declined", details={"card": "visa"}, non_retryable=True
    )


async def crash(ctx: TaskContext) -> Mapping[str, Any]:
    """Raises an unexpected exception."""
    raise RuntimeError("kaboom " + "x" * 10_000)


async def huge(ctx: TaskContext) -> Mapping[str, Any]:
    """Returns an output over the 4 MiB limit."""
    return {"blob": "x" * (5 * 1024 * 1024)}


async def not_a_mapping(ctx: TaskContext) -> Any:
    """Returns a list."""
    return [1, 2, 3]


async def progress(ctx: TaskContext) -> Mapping[str, Any]:
    """Reports progress, then waits for a few heartbeats."""
    await ctx.report_progress({"done": 1, "of": 2})
    await asyncio.sleep(0.4)
    return {"ok": True}


async def inspect_context(ctx: TaskContext) -> Mapping[str, Any]:
    """Returns what it was told about the attempt."""
    remaining = ctx.remaining_seconds()
    return {
        "input": dict(ctx.input),
        "input_count_type": type(ctx.input.get("count")).__name__,
        "config": dict(ctx.config),
        "kind": ctx.kind.value,
        "step_output": dict(ctx.step_output),
        "execution": ctx.execution,
        "step_id": ctx.step_id,
        "attempt": ctx.attempt,
        "delivery": ctx.delivery,
        "tenant": ctx.tenant,
        "workflow": ctx.workflow,
        "version": ctx.version,
        "labels": dict(ctx.labels),
        "idempotency_key": ctx.idempotency_key,
        "task_id": ctx.task_id,
        "remaining_ok": remaining is not None and 0 < remaining <= 10,
    }


async def wait_for_cancel(ctx: TaskContext) -> Mapping[str, Any]:
    """Sleeps until cancelled; records that ``ctx.cancelled`` was set first."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        CANCELLED_EVENTS.append(ctx.cancelled.is_set())
        raise
    return {}


CANCELLED_EVENTS: list[bool] = []

ENTRY_POINTS = {
    "test.declined": "declined",
    "test.crash": "crash",
    "test.huge": "huge",
    "test.not-a-mapping": "not_a_mapping",
    "test.progress": "progress",
    "test.inspect": "inspect_context",
    "test.wait-for-cancel": "wait_for_cancel",
}
"""Entry point name -> attribute of this module."""
