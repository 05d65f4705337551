"""Step handlers: the code a worker runs for a task step.

Writing a handler
-----------------
A handler is an async function of a :class:`TaskContext` that returns the step
output, a JSON-able mapping::

    from maestro.services.executor.handlers import HandlerError, TaskContext

    async def charge(ctx: TaskContext) -> dict[str, object]:
        \"\"\"Charges a card through the billing API.\"\"\"
        token = ctx.secret("billing-token")  # MAESTRO_TENANT_SECRET_<TENANT>__BILLING_TOKEN
        await ctx.report_progress({"phase": "charging"})   # sent with the next heartbeat
        result = await billing.charge(
            ctx.input["card"], ctx.input["amount"],
            idempotency_key=ctx.idempotency_key,        # same on every redelivery
            token=token,
        )
        if result.declined:
            raise HandlerError("CARD_DECLINED", "the card was declined", non_retryable=True)
        return {"charge_id": result.id}

Delivery is at least once, so anything with side effects must pass
``ctx.idempotency_key`` on. The worker cancels the handler's coroutine when the
attempt's ``deadline`` passes (the attempt fails with ``TIMED_OUT``), when the
scheduler asks for cancellation (``ctx.cancelled`` is set first; the attempt
fails with ``CANCELLED``) and when the worker loses the lease or shuts down
(nothing is reported; the attempt is delivered again). Let
``asyncio.CancelledError`` propagate.

Failures: raise :class:`HandlerError` with an UPPER_SNAKE ``code`` (a step's
retry policy may name codes it never retries), a message without secrets,
optional JSON-able ``details`` and ``non_retryable=True`` when retrying cannot
help. Any other exception fails the attempt with the retryable code
``HANDLER_ERROR``. An output that is not a JSON-able mapping fails with
``INVALID_OUTPUT``, one over 4 MiB as JSON with ``OUTPUT_TOO_LARGE`` (both
non-retryable).

Packaging a handler
-------------------
Other distributions add handlers through the ``maestro.handlers`` entry point
group; the entry point name is the handler name, the value names either the
handler or a :class:`HandlerSpec` (to declare a description and a config
schema)::

    [project.entry-points."maestro.handlers"]
    "team.billing/charge" = "acme_handlers.billing:charge"

Install the distribution next to the executor and restart it: ListHandlers
shows the handler with source ENTRY_POINT. An entry point that fails to load
is logged and skipped; a name that clashes with a built-in (``echo``,
``noop``, ``sleep``, ``http``) is logged and the built-in wins.
"""

from maestro.services.executor.handlers.api import (
    Handler,
    HandlerError,
    HandlerSource,
    HandlerSpec,
    SecretResolver,
    TaskContext,
    TaskKind,
)
from maestro.services.executor.handlers.registry import (
    ENTRY_POINT_GROUP,
    HandlerPage,
    HandlerRegistry,
    load_handlers,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Handler",
    "HandlerError",
    "HandlerPage",
    "HandlerRegistry",
    "HandlerSource",
    "HandlerSpec",
    "SecretResolver",
    "TaskContext",
    "TaskKind",
    "load_handlers",
]
