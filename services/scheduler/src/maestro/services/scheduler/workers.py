"""Who may be a worker: the one check in front of every TaskQueueService RPC.

A worker leases tasks of every tenant on its queues, with their inputs and
config, and reports their results, so the worker protocol is for worker
identities only (the scheduler's ``workers`` setting), each on the queues it
names. The identity is the caller's service identity, as for every
service-to-service check (``runtime.policy.served_for``): the certificate's on
a TLS port, the typed clients' ``x-maestro-caller`` on a plaintext one (the
mesh vouches for it). Heartbeats and reports carry a lease only a poll could
have handed out, so they check the identity alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from maestro.runtime import context
from maestro.runtime.errors import PermissionDeniedError


class WorkerAccess:
    """The worker identities and the task queues each may poll."""

    def __init__(self, queues: Mapping[str, Sequence[str]]) -> None:
        self._queues = {identity: tuple(patterns) for identity, patterns in queues.items()}

    def check(self, task_queue: str | None = None) -> None:
        """Returns when the caller is a worker (allowed on ``task_queue`` when
        one is named).

        Raises:
            PermissionDeniedError: POLICY_DENIED, metadata ``caller`` (and
                ``task_queue``).
        """
        caller = context.current().caller_service
        patterns = self._queues.get(caller)
        if patterns is None:
            raise PermissionDeniedError(
                f"{caller or 'a caller without a service identity'} is not a worker: "
                "the worker protocol serves the identities in the scheduler's `workers` setting",
                metadata={"caller": caller},
            )
        if task_queue is not None and not any(fnmatchcase(task_queue, p) for p in patterns):
            raise PermissionDeniedError(
                f"worker {caller} may not poll task queue {task_queue!r} "
                f"(its queues: {', '.join(patterns) or 'none'})",
                metadata={"caller": caller, "task_queue": task_queue},
            )
