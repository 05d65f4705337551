"""Offline stand-ins for the integrations the sample workflows call.

Every handler here is deterministic and touches nothing outside the process:
its output is computed from the step's input and config (and, for ids of
side effects, the attempt's idempotency key), shaped to satisfy the step's
``outputSchema`` in ``samples/workflows/``. They are registered as
``maestro.handlers`` entry points (see ``pyproject.toml``), so an executor
with this distribution installed runs the samples end to end offline.

Secrets the samples reference (``secret://...`` in ``config``) are resolved
through ``ctx.secret`` like a real integration would, so a worker without
``MAESTRO_SECRET_<NAME>`` fails the step with ``SECRET_NOT_FOUND``.
"""
