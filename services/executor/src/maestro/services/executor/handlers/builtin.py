"""Handlers shipped with the executor: ``echo``, ``noop``, ``sleep`` and ``http``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import httpx

from maestro.services.executor.handlers.api import HandlerError, HandlerSpec, TaskContext
from maestro.services.executor.handlers.http import CONFIG_SCHEMA as HTTP_CONFIG_SCHEMA
from maestro.services.executor.handlers.http import HttpHandler

DEFAULT_SLEEP_SECONDS = 1.0


async def echo(ctx: TaskContext) -> Mapping[str, Any]:
    """Returns its input unchanged."""
    return dict(ctx.input)


async def noop(ctx: TaskContext) -> Mapping[str, Any]:
    """Does nothing; output `{}`."""
    del ctx
    return {}


async def sleep(ctx: TaskContext) -> Mapping[str, Any]:
    """Sleeps `seconds` (input, else config; default 1); output `{"slept": seconds}`."""
    raw = ctx.input.get("seconds", ctx.config.get("seconds", DEFAULT_SLEEP_SECONDS))
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise HandlerError(
            "INVALID_CONFIG",
            f"`seconds` must be a number, got {type(raw).__name__}",
            non_retryable=True,
        )
    seconds = float(raw)
    if not math.isfinite(seconds) or seconds < 0:
        raise HandlerError(
            "INVALID_CONFIG", "`seconds` must be a finite number >= 0", non_retryable=True
        )
    await asyncio.sleep(seconds)
    return {"slept": seconds}


SLEEP_CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"seconds": {"type": "number", "minimum": 0, "default": 1}},
}


def builtin_handlers(http_client: httpx.AsyncClient, *, http_timeout: float) -> list[HandlerSpec]:
    """The built-in handlers; ``http`` sends its requests through ``http_client``
    (shared by every task of the worker) with ``http_timeout`` seconds by default."""
    http = HttpHandler(http_client, default_timeout=http_timeout)
    return [
        HandlerSpec("echo", echo, "Returns its input unchanged."),
        HandlerSpec("noop", noop, "Does nothing; output {}."),
        HandlerSpec(
            "sleep",
            sleep,
            "Sleeps `seconds` (input, else config; default 1), cancellably.",
            SLEEP_CONFIG_SCHEMA,
        ),
        HandlerSpec(
            "http",
            http,
            "Sends one HTTP request with the attempt's Idempotency-Key; output status, "
            "headers and body.",
            HTTP_CONFIG_SCHEMA,
        ),
    ]
