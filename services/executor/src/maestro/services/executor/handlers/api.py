"""The handler API: what a step handler receives, returns and raises.

See the package docstring (:mod:`maestro.services.executor.handlers`) for a
walk-through of writing and packaging a handler.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

MAX_PROGRESS_BYTES = 64 * 1024
"""Largest progress report (as JSON) a heartbeat carries."""

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class TaskKind(enum.StrEnum):
    """Which handler of a step a task runs."""

    RUN = "run"
    """The step's handler."""
    COMPENSATE = "compensate"
    """The step's compensate handler (saga undo); ``step_output`` is the output
    being undone."""


class SecretResolver(Protocol):
    """Resolves ``secret://<name>`` references (see ``executor.secrets``)."""

    def resolve(self, name: str, *, tenant: str) -> str:
        """The value of secret ``name`` for ``tenant``; raises
        :class:`HandlerError` ``SECRET_NOT_FOUND`` when there is none."""
        ...


class HandlerError(Exception):
    """A handler failure reported to the scheduler with FailTask.

    Args:
        code: machine-readable, UPPER_SNAKE (``HTTP_502``, ``CARD_DECLINED``);
            a step's retry policy may list codes it does not retry.
        message: human-readable; must not contain secrets. Cut to 4 KiB.
        details: optional JSON-able mapping (at most 64 KiB as JSON).
        non_retryable: True when retrying cannot help (bad configuration,
            a permanent refusal): the step then fails without further
            attempts. False leaves it to the step's retry policy.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        non_retryable: bool = False,
    ) -> None:
        if not _CODE.match(code):
            raise ValueError(f"handler error code must be UPPER_SNAKE, got {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: Mapping[str, Any] = dict(details or {})
        self.non_retryable = non_retryable

    def __repr__(self) -> str:
        return f"HandlerError({self.code}: {self.message})"


def _no_progress(progress: Mapping[str, Any]) -> None:
    del progress


@dataclass(frozen=True, eq=False)
class TaskContext:
    """Everything a handler knows about the step attempt it runs.

    JSON numbers arrive as ``int`` when integral and ``float`` otherwise.
    """

    input: Mapping[str, Any]
    """Inputs resolved from the step's input mapping."""
    config: Mapping[str, Any]
    """Handler configuration from the compiled plan; ``secret://`` references
    are left unresolved (see :meth:`secret`)."""
    idempotency_key: str
    """Stable key of the attempt, the same on every redelivery: pass it on to
    anything with side effects."""
    execution: str
    """Execution resource name, ``executions/{execution}``."""
    step_id: str
    """Step id; for a LOOP iteration ``{loop_id}[{index}]``."""
    attempt: int
    """Attempt number, from 1; a redelivery keeps it."""
    delivery: int
    """How many times this attempt was leased, this one included."""
    tenant: str
    """Tenant of the execution."""
    workflow: str
    """Workflow resource name, ``workflows/{workflow}``."""
    version: str
    """Published workflow version the execution runs."""
    deadline: datetime | None
    """When the scheduler times the attempt out (UTC); the worker cancels the
    handler then. None only when the scheduler sent no deadline."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Policy labels of the step."""
    kind: TaskKind = TaskKind.RUN
    """RUN or COMPENSATE."""
    step_output: Mapping[str, Any] = field(default_factory=dict)
    """For COMPENSATE tasks, the output being undone; empty for RUN tasks."""
    handler: str = ""
    """The handler name the step asked for."""
    task_id: str = ""
    """Opaque id of the task, the same on every delivery of the attempt."""
    task_queue: str = ""
    """Task queue the task was leased from."""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the scheduler asks for the attempt to be cancelled, just before
    the handler's coroutine is cancelled; code running in threads can poll it."""
    secrets: SecretResolver | None = field(default=None, repr=False)
    progress_sink: Callable[[Mapping[str, Any]], None] = field(default=_no_progress, repr=False)

    def remaining_seconds(self) -> float | None:
        """Seconds left until :attr:`deadline` (negative once past); None without one."""
        if self.deadline is None:
            return None
        return (self.deadline - datetime.now(UTC)).total_seconds()

    def secret(self, name: str) -> str:
        """The value of secret ``name`` (the part after ``secret://``) for the
        task's tenant.

        Raises:
            HandlerError: ``SECRET_NOT_FOUND`` (non-retryable).
        """
        if self.secrets is None:
            raise HandlerError(
                "SECRET_NOT_FOUND", f"no secrets are available for {name!r}", non_retryable=True
            )
        return self.secrets.resolve(name, tenant=self.tenant)

    async def report_progress(self, progress: Mapping[str, Any]) -> None:
        """Progress details for the step timeline, sent with the next heartbeat
        (each report replaces the previous one).

        Raises:
            ValueError: ``progress`` is not JSON-able or is over 64 KiB as JSON.
        """
        try:
            encoded = json.dumps(dict(progress), allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"progress must be a JSON object: {exc}") from exc
        if len(encoded.encode()) > MAX_PROGRESS_BYTES:
            raise ValueError(f"progress is over {MAX_PROGRESS_BYTES} bytes as JSON")
        self.progress_sink(json.loads(encoded))


Handler = Callable[[TaskContext], Awaitable[Mapping[str, Any] | None]]
"""A step handler: ``async def handler(ctx: TaskContext) -> Mapping[str, Any]``.

It returns the step output (a JSON-able mapping; None means ``{}``) or raises
:class:`HandlerError`. Any other exception fails the attempt with the
retryable code ``HANDLER_ERROR``.
"""


class HandlerSource(enum.Enum):
    """Where a handler was registered from."""

    BUILTIN = "builtin"
    ENTRY_POINT = "entry_point"


@dataclass(frozen=True)
class HandlerSpec:
    """A named handler and what the worker tells about it (ListHandlers).

    An entry point may name a ``HandlerSpec`` instead of a bare handler to
    declare its description and config schema; the entry point name then
    wins over ``name``.
    """

    name: str
    """Handler name used in a step's ``handler`` (``http``, ``team.billing/charge``)."""
    fn: Handler
    """The handler coroutine function."""
    description: str = ""
    """One line; defaults to the first line of the handler's docstring."""
    config_schema: Mapping[str, Any] | None = None
    """JSON Schema of ``config``, for documentation; None when undeclared."""
    source: HandlerSource = HandlerSource.BUILTIN
    entry_point: str = ""
    """For entry-point handlers, ``module:attribute``."""
    distribution: str = ""
    """For entry-point handlers, the providing distribution, ``name version``."""
