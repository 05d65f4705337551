"""Structured logging: redaction and JSON records with call context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from maestro.runtime import context
from maestro.runtime.context import CallContext, Principal
from maestro.runtime.logs import REDACTED, ContextFilter, JsonFormatter, TextFormatter, redact


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "token",
        "access_token",
        "Authorization",
        "api_key",
        "apiKey",
        "client_secret",
        "private_key",
    ],
)
def test_secret_keys_are_redacted(key: str) -> None:
    assert redact({key: "hunter2", "user": "alice"}) == {key: REDACTED, "user": "alice"}


def test_redaction_is_recursive_and_keeps_other_values() -> None:
    value = {
        "config": {"headers": {"authorization": "Basic abc"}, "timeout": 5},
        "items": [{"token": "t"}, "Bearer abc.def-ghi", 3],
    }
    assert redact(value) == {
        "config": {"headers": {"authorization": REDACTED}, "timeout": 5},
        "items": [{"token": REDACTED}, f"Bearer {REDACTED}", 3],
    }


def test_bearer_tokens_inside_strings_are_redacted() -> None:
    text = "calling https://x with header Authorization: bearer eyJhbGc.eyJzdWIi.sig ok"
    out = redact(text)
    assert "eyJhbGc" not in out
    assert out == f"calling https://x with header Authorization: bearer {REDACTED} ok"
    assert redact("no secrets here") == "no secrets here"
    assert redact(42) == 42


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter("compiler"))
    logger = logging.getLogger("maestro.test.logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_json_record_carries_the_bound_call_context(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    ctx = CallContext(
        request_id="rid-123",
        principal=Principal(tenant="acme", subject="alice"),
        method="maestro.compiler.v1.CompilerService/DigestWorkflow",
        execution_id="ex-9",
    )
    with context.bind(ctx):
        logger.info("hello %s", "world", extra={"password": "p", "attempt": 2})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "hello world"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "maestro.test.logs"
    assert entry["service"] == "compiler"
    assert entry["request_id"] == "rid-123"
    assert entry["execution_id"] == "ex-9"
    assert entry["method"] == "maestro.compiler.v1.CompilerService/DigestWorkflow"
    assert entry["tenant"] == "acme"
    assert entry["subject"] == "alice"
    assert entry["password"] == REDACTED
    assert entry["attempt"] == 2
    assert entry["time"].endswith("+00:00")


def test_json_record_outside_a_call_has_no_request_id(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    logger.warning("token is Bearer abc123")
    entry = json.loads(stream.getvalue())
    assert "request_id" not in entry
    assert entry["message"] == f"token is Bearer {REDACTED}"


def test_json_record_includes_the_exception(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed")
    entry = json.loads(stream.getvalue())
    assert "ValueError: bad" in entry["exception"]


def test_text_formatter_appends_the_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "password=Bearer xyz", None, None)
    record.request_id = "rid-1"
    record.service = "registry"
    line = TextFormatter().format(record)
    assert line.endswith(f"registry password=Bearer {REDACTED} request_id=rid-1")
