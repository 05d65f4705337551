"""Helpers shared by the fakes: typed input and config access, secrets, stable ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from maestro.services.executor.handlers import HandlerError, TaskContext
from maestro.services.executor.secrets import reference


def invalid(code: str, message: str) -> HandlerError:
    """A non-retryable failure: a bad input or config does not get better on retry."""
    return HandlerError(code, message, non_retryable=True)


def text(values: Mapping[str, Any], name: str, *, where: str = "input") -> str:
    """A required non-empty string field."""
    value = values.get(name)
    if not isinstance(value, str) or not value:
        code = "INVALID_INPUT" if where == "input" else "INVALID_CONFIG"
        raise invalid(code, f"{where} `{name}` must be a non-empty string")
    return value


def optional_text(values: Mapping[str, Any], name: str) -> str:
    """An optional string field; absent or null is ``""``."""
    value = values.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid("INVALID_INPUT", f"input `{name}` must be a string")
    return value


def number(values: Mapping[str, Any], name: str) -> float:
    """A required number field."""
    value = values.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("INVALID_INPUT", f"input `{name}` must be a number")
    return float(value)


def strings(values: Mapping[str, Any], name: str) -> list[str] | None:
    """An optional list of strings; None when absent or null."""
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("INVALID_INPUT", f"input `{name}` must be a list of strings")
    return list(value)


def day(values: Mapping[str, Any], name: str = "date") -> date:
    """A required ISO date (``2026-11-20``)."""
    raw = text(values, name)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise invalid("INVALID_INPUT", f"input `{name}` must be an ISO date") from exc


def require_secret(ctx: TaskContext, key: str) -> str:
    """Resolves ``config[key]``, which must be a ``secret://<name>`` reference,
    as the real integration would before calling out."""
    name = reference(ctx.config.get(key))
    if name is None:
        raise invalid("INVALID_CONFIG", f"config `{key}` must be a secret:// reference")
    return ctx.secret(name)


def stable_id(prefix: str, *parts: object) -> str:
    """``{prefix}-{12 hex}``, the same for the same parts."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:12]}"
