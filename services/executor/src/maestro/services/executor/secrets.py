"""``secret://<name>`` references in handler configuration.

A step's ``config`` names secrets instead of holding them (the compiler's
``PLAINTEXT_SECRET`` lint refuses literals). The executor resolves a reference
from the environment variable ``MAESTRO_SECRET_<NAME>``: the name upper-cased,
with ``-``, ``.`` and ``/`` turned into ``_`` (``secret://risk-token`` ->
``MAESTRO_SECRET_RISK_TOKEN``). A string is a reference only when it is
entirely ``secret://<name>``. Resolved values are never logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from maestro.services.executor.handlers.api import HandlerError

SCHEME = "secret://"
ENV_PREFIX = "MAESTRO_SECRET_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
_SEPARATORS = str.maketrans({"-": "_", ".": "_", "/": "_"})


def env_var(name: str) -> str:
    """The environment variable holding secret ``name``."""
    return ENV_PREFIX + name.upper().translate(_SEPARATORS)


def reference(value: object) -> str | None:
    """The secret name when ``value`` is a ``secret://<name>`` string, else None."""
    if isinstance(value, str) and value.startswith(SCHEME):
        return value[len(SCHEME) :]
    return None


class EnvironmentSecrets:
    """Secrets from ``MAESTRO_SECRET_*`` variables of ``environ``."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def resolve(self, name: str) -> str:
        """The value of secret ``name``.

        Raises:
            HandlerError: ``SECRET_NOT_FOUND``, non-retryable (a missing secret
                is configuration, not a passing fault).
        """
        if not _NAME.match(name):
            raise HandlerError(
                "SECRET_NOT_FOUND", f"invalid secret name {name!r}", non_retryable=True
            )
        value = self._environ.get(env_var(name))
        if value is None:
            raise HandlerError(
                "SECRET_NOT_FOUND",
                f"secret {name!r} is not configured on this worker ({env_var(name)})",
                details={"secret": name},
                non_retryable=True,
            )
        return value


def resolve_references(value: Any, resolve: Callable[[str], str]) -> Any:
    """``value`` with every ``secret://<name>`` string, at any depth, replaced by
    ``resolve(name)`` (a new structure; ``value`` is not changed)."""
    name = reference(value)
    if name is not None:
        return resolve(name)
    if isinstance(value, Mapping):
        return {k: resolve_references(v, resolve) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_references(v, resolve) for v in value]
    return value
