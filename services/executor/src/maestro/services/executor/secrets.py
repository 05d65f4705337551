"""``secret://<name>`` references in handler configuration.

A step's ``config`` names secrets instead of holding them (the compiler's
``PLAINTEXT_SECRET`` lint refuses literals). The executor resolves a reference
for the task's tenant from environment variables, names upper-cased with ``-``,
``.`` and ``/`` turned into ``_``:

- ``MAESTRO_TENANT_SECRET_<TENANT>__<NAME>``, the tenant's own
  (``secret://risk-token`` of tenant ``acme`` ->
  ``MAESTRO_TENANT_SECRET_ACME__RISK_TOKEN``), first. Only tenants named in
  lowercase letters and digits with single hyphens have their own secrets, so
  no two tenants map to one variable (``acme`` and ``Acme``, ``a-b`` and
  ``a_b`` would);
- then ``MAESTRO_SECRET_<NAME>``, shared by every tenant, unless the worker
  turns shared secrets off (``shared_secrets``: a worker that serves several
  tenants should, so no tenant uses another's credentials).

A string is a reference only when it is entirely ``secret://<name>``.
Resolved values are never logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from maestro.services.executor.handlers.api import HandlerError

SCHEME = "secret://"
ENV_PREFIX = "MAESTRO_SECRET_"
TENANT_ENV_PREFIX = "MAESTRO_TENANT_SECRET_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
_SEPARATORS = str.maketrans({"-": "_", ".": "_", "/": "_"})
_TENANT = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def env_var(name: str, tenant: str | None = None) -> str:
    """The environment variable holding secret ``name``: ``tenant``'s own, or
    the one shared by every tenant (``tenant`` None).

    Raises:
        ValueError: ``tenant`` is not lowercase letters and digits with single
            hyphens (it could share variables with another tenant).
    """
    variable = name.upper().translate(_SEPARATORS)
    if tenant is None:
        return ENV_PREFIX + variable
    if not _TENANT.match(tenant):
        raise ValueError(f"tenant {tenant!r} has no secrets of its own")
    return f"{TENANT_ENV_PREFIX}{tenant.upper().translate(_SEPARATORS)}__{variable}"


def reference(value: object) -> str | None:
    """The secret name when ``value`` is a ``secret://<name>`` string, else None."""
    if isinstance(value, str) and value.startswith(SCHEME):
        return value[len(SCHEME) :]
    return None


class EnvironmentSecrets:
    """Secrets from the ``MAESTRO_TENANT_SECRET_*`` (and, when ``shared``,
    ``MAESTRO_SECRET_*``) variables of ``environ``."""

    def __init__(self, environ: Mapping[str, str], *, shared: bool = True) -> None:
        self._environ = environ
        self._shared = shared

    def resolve(self, name: str, *, tenant: str) -> str:
        """The value of secret ``name`` for ``tenant``.

        Raises:
            HandlerError: ``SECRET_NOT_FOUND``, non-retryable (a missing secret
                is configuration, not a passing fault).
        """
        if not _NAME.match(name):
            raise HandlerError(
                "SECRET_NOT_FOUND", f"invalid secret name {name!r}", non_retryable=True
            )
        own = [env_var(name, tenant)] if _TENANT.match(tenant) else []
        looked = own + ([env_var(name)] if self._shared else [])
        for variable in looked:
            value = self._environ.get(variable)
            if value is not None:
                return value
        where = " or ".join(looked) or (
            "the tenant's name is not lowercase letters, digits and single hyphens, so it "
            "has no secrets of its own, and shared secrets are off"
        )
        raise HandlerError(
            "SECRET_NOT_FOUND",
            f"secret {name!r} is not configured on this worker for tenant {tenant!r} ({where})",
            details={"secret": name},
            non_retryable=True,
        )


def names_secret(value: Any) -> bool:
    """Whether ``value`` holds a ``secret://`` reference at any depth (where
    :func:`resolve_references` would resolve one)."""
    if reference(value) is not None:
        return True
    if isinstance(value, Mapping):
        return any(names_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(names_secret(v) for v in value)
    return False


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
