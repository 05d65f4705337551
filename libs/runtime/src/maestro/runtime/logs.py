"""Structured logging: one JSON object per line, with call context attached.

Every record carries the service name and, when known, the request id, caller
tenant/subject, execution id, step id and trace id. Values of keys that look like
secrets are replaced before a record is written, wherever they come from.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from maestro.runtime import context

_SECRET_KEY = re.compile(r"secret|token|password|passwd|authorization|api[-_]?key|private", re.I)
_SECRET_VALUE = re.compile(r"(?i)\b(bearer\s+)[a-z0-9._~+/=-]+")
_BEARER = re.compile(r"(?i)bearer")
"""A cheap test before ``_SECRET_VALUE``: no match of this, no token."""
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "taskName",
}
REDACTED = "[REDACTED]"
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""Values orjson would write its own way go to ``default=str``, as with json."""


_REDACTED_TOKEN = r"\1" + REDACTED


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether values under ``key`` are secrets (records reuse a few keys)."""
    return _SECRET_KEY.search(key) is not None


def redact(value: Any, key: str = "") -> Any:
    """``value`` with secret-looking keys' values and bearer tokens replaced."""
    if key and _secret_key(key):
        return REDACTED
    if isinstance(value, str):
        # `sub` expands its template on every call; most texts hold no token
        return _SECRET_VALUE.sub(_REDACTED_TOKEN, value) if _BEARER.search(value) else value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class ContextFilter(logging.Filter):
    """Adds service name, call context and trace id to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        record.service = getattr(record, "service", self.service)
        for name in ("request_id", "execution_id", "step_id", "method", "caller_service"):
            if not getattr(record, name, "") and getattr(ctx, name):
                setattr(record, name, getattr(ctx, name))
        if ctx.principal.tenant and not getattr(record, "tenant", ""):
            record.tenant = ctx.principal.tenant
        if ctx.principal.subject and not getattr(record, "subject", ""):
            record.subject = ctx.principal.subject
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:  # orjson: the same JSON as json.dumps, several times faster
            return orjson.dumps(entry, default=str, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # what orjson refuses (a key not a string, a huge int)
            return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id, for local development."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", "")
        service = getattr(record, "service", "-")
        message = redact(record.getMessage())
        line = f"{self.formatTime(record)} {record.levelname:<7} {service} {message}"
        if rid:
            line += f" request_id={rid}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Sets up the root logger for a process running ``service``.

    Called once per process; when several services share a process the first
    call wins the handler and every record still names its own service through
    the logger's ``service`` extra.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    if any(getattr(h, "_maestro", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._maestro = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(service))
    root.addHandler(handler)
