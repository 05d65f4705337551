"""The built-in ``http`` handler: one HTTP request per attempt.

Request fields come from ``config`` overlaid by ``input`` (input wins;
``headers`` and ``query`` merge key by key):

- ``url`` (required, http or https),
- ``method`` (default GET, or POST when there is a body),
- ``headers`` and ``query`` (string maps),
- ``body`` (object or array: sent as JSON; string: sent as text),
- ``timeout`` seconds (default the worker's ``http_timeout_seconds``, never past
  the task deadline).

``secret://<name>`` values anywhere in ``config`` are resolved for the task's
tenant (see ``executor.secrets``); ``config`` is the published workflow's,
where the policy checked who wrote it. Runtime data cannot reach a secret: a
header in ``input`` that names one is refused (``SECRET_IN_INPUT``), and when
``config`` names any secret an ``input`` url must keep the config url's scheme,
host and port (``SECRET_URL_FROM_INPUT``), so data cannot send the secret
elsewhere. The request always carries
``Idempotency-Key: <the attempt's idempotency key>``, so a redelivered attempt
can be recognised by the server.

Output: ``{"status": int, "headers": {lower-cased name: value}, "body": ...}``
with the body parsed when the response is JSON and text otherwise, cut at
1 MiB (then ``"truncated": true``). Failures are :class:`HandlerError`s:
``HTTP_<status>`` for 4xx/5xx (retryable for 5xx, 408 and 429),
``HTTP_TIMEOUT`` and ``HTTP_CONNECT_ERROR`` (retryable), ``INVALID_CONFIG``,
``SECRET_NOT_FOUND``, ``SECRET_IN_INPUT`` and ``SECRET_URL_FROM_INPUT`` (not
retryable). Header values and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from maestro.services.executor.handlers.api import HandlerError, TaskContext
from maestro.services.executor.secrets import names_secret, reference, resolve_references

MAX_BODY_BYTES = 1024 * 1024
"""Response bodies are cut here."""
MAX_ERROR_BODY_CHARS = 4096
"""How much of a failed response's body goes into the error details."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
_HIDDEN_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
_FIELDS = ("url", "method", "body", "timeout")
"""Fields where an input value replaces the config value (headers and query merge)."""

log = logging.getLogger("maestro.executor.http")

CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "method": {"type": "string", "enum": sorted(METHODS)},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "query": {"type": "object"},
        "body": {"type": ["object", "array", "string"]},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
    },
}


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: httpx.URL
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    timeout: float

    @property
    def target(self) -> str:
        """Method and URL without query or credentials: safe for messages and logs."""
        port = f":{self.url.port}" if self.url.port else ""
        return f"{self.method} {self.url.scheme}://{self.url.host}{port}{self.url.path}"


def _merged_headers(configured: Any, given: Any, *, with_secrets: bool) -> dict[str, str]:
    """The config's headers overlaid by the input's. Header names are
    case-insensitive: an input header replaces the config's whatever its
    spelling, and nobody sets Idempotency-Key (the caller adds it). An input
    header naming a secret is refused (``SECRET_IN_INPUT``), and so is an
    input ``Host`` when the config names secrets (it would take them to
    another site behind the same address: ``SECRET_URL_FROM_INPUT``)."""
    merged: dict[str, tuple[str, str]] = {}
    for source in (configured, given):
        for key, value in _string_map(source, "headers").items():
            merged[key.lower()] = (key, value)
    for key, value in _string_map(given, "headers").items():
        if with_secrets and key.lower() == "host":
            raise HandlerError(
                "SECRET_URL_FROM_INPUT",
                "the step's config names secrets, so the Host header may not come from input",
                non_retryable=True,
            )
        if reference(value) is not None:
            raise HandlerError(
                "SECRET_IN_INPUT",
                f"input header {key!r} names a secret: secret:// references resolve "
                "only in the step's config, never in runtime data",
                details={"header": key},
                non_retryable=True,
            )
    merged.pop(IDEMPOTENCY_HEADER.lower(), None)
    return dict(merged.values())


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _same_origin(url: httpx.URL, configured: Any) -> None:
    """Refuses an input ``url`` that would take the config's secrets to
    another scheme, host or port than the config's ``url``."""
    try:
        allowed = httpx.URL(configured) if isinstance(configured, str) and configured else None
    except httpx.InvalidURL:
        allowed = None
    if allowed is None or _origin(url) != _origin(allowed):
        raise HandlerError(
            "SECRET_URL_FROM_INPUT",
            "the step's config names secrets, so an input url must keep the config url's "
            f"scheme, host and port ({allowed.scheme}://{allowed.netloc.decode()})"
            if allowed is not None
            else "the step's config names secrets but no url: the url may not come from input",
            non_retryable=True,
        )


def _invalid(message: str) -> HandlerError:
    return HandlerError("INVALID_CONFIG", message, non_retryable=True)


def _string_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(f"`{name}` must be an object of strings")
    result = {}
    for key, item in value.items():
        if isinstance(item, Mapping | list) or item is None:
            raise _invalid(f"`{name}.{key}` must be a string")
        result[str(key)] = item if isinstance(item, str) else _scalar(item)
    return result


def _query(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid("`query` must be an object")
    result: dict[str, Any] = {}
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if any(isinstance(i, Mapping | list) for i in items):
            raise _invalid(f"`query.{key}` must be a scalar or a list of scalars")
        result[str(key)] = [_scalar(i) for i in items] if isinstance(item, list) else _scalar(item)
    return result


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HttpHandler:
    """Sends one HTTP request per attempt through a shared ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, *, default_timeout: float) -> None:
        self._client = client
        self._default_timeout = default_timeout

    async def __call__(self, ctx: TaskContext) -> Mapping[str, Any]:
        """Sends one HTTP request with the attempt's Idempotency-Key."""
        request = self._request(ctx)
        started = time.monotonic()
        try:
            async with asyncio.timeout(request.timeout):
                response, body, truncated = await self._send(request)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise HandlerError(
                "HTTP_TIMEOUT",
                f"{request.target} did not answer within {request.timeout:g} s",
                details={"timeout_seconds": request.timeout},
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise _invalid(f"unsupported URL scheme in {request.target}") from exc
        except httpx.ConnectError as exc:
            raise HandlerError(
                "HTTP_CONNECT_ERROR", f"cannot connect for {request.target}: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            raise HandlerError(
                "HTTP_TRANSPORT_ERROR", f"{request.target} failed: {type(exc).__name__}"
            ) from exc
        log.debug(
            "%s answered %d",
            request.target,
            response.status_code,
            extra={"status": response.status_code, "seconds": time.monotonic() - started},
        )
        status = response.status_code
        text = _text(response, body)
        if status >= 400:
            raise HandlerError(
                f"HTTP_{status}",
                f"{request.target} answered HTTP {status}",
                details={"status": status, "body": text[:MAX_ERROR_BODY_CHARS]},
                non_retryable=status < 500 and status not in RETRYABLE_CLIENT_ERRORS,
            )
        output: dict[str, Any] = {
            "status": status,
            "headers": _headers(response),
            "body": text if truncated else _parse(response, text),
        }
        if truncated:
            output["truncated"] = True
        return output

    def _request(self, ctx: TaskContext) -> _Request:
        with_secrets = names_secret(ctx.config)
        config = resolve_references(dict(ctx.config), ctx.secret)
        given = {
            k: ctx.input[k] if ctx.input.get(k) is not None else config.get(k) for k in _FIELDS
        }
        headers = _merged_headers(
            config.get("headers"), ctx.input.get("headers"), with_secrets=with_secrets
        )
        headers[IDEMPOTENCY_HEADER] = ctx.idempotency_key
        query = _query(config.get("query"))
        query.update(_query(ctx.input.get("query")))

        raw_url = given["url"]
        if not isinstance(raw_url, str) or not raw_url:
            raise _invalid("`url` is required")
        try:
            url = httpx.URL(raw_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise _invalid("`url` is not a valid URL") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise _invalid("`url` must be an absolute http or https URL")
        if with_secrets and ctx.input.get("url") is not None:
            _same_origin(url, config.get("url"))

        body = given["body"]
        if body is not None and not isinstance(body, Mapping | list | str):
            raise _invalid("`body` must be an object, an array or a string")
        method = given["method"] or ("POST" if body is not None else "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _invalid(f"`method` must be one of {', '.join(sorted(METHODS))}")

        timeout = given["timeout"] if given["timeout"] is not None else self._default_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise _invalid("`timeout` must be a number of seconds")
        if not math.isfinite(timeout) or timeout <= 0:
            raise _invalid("`timeout` must be > 0")
        remaining = ctx.remaining_seconds()
        if remaining is not None:
            timeout = min(timeout, max(remaining, 0.001))
        return _Request(method.upper(), url, headers, query, body, float(timeout))

    async def _send(self, request: _Request) -> tuple[httpx.Response, bytes, bool]:
        content: bytes | None = None
        json_body: Any = None
        headers = dict(request.headers)
        if isinstance(request.body, str):
            content = request.body.encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "text/plain; charset=utf-8"
        elif request.body is not None:
            json_body = request.body
        async with self._client.stream(
            request.method,
            request.url,
            params=request.query or None,
            headers=headers,
            content=content,
            json=json_body,
            timeout=httpx.Timeout(request.timeout),
        ) as response:
            body, truncated = await _read(response, MAX_BODY_BYTES)
        return response, body, truncated


async def _read(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer.extend(chunk)
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False


def _text(response: httpx.Response, body: bytes) -> str:
    try:
        return body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _is_json(response: httpx.Response) -> bool:
    media = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _parse(response: httpx.Response, text: str) -> Any:
    if not _is_json(response) or not text.strip():
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in response.headers.multi_items():
        name = key.lower()
        if name in _HIDDEN_RESPONSE_HEADERS:
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers
