"""Lint: the rules, their severities and limits, disabling rules, and
LintWorkflow/GetWorkflowSchema through a real gRPC server."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from maestro.common.v1 import diagnostic_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.errors import InvalidArgumentError
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.lint import (
    LINT_RULES,
    MAX_LEVEL_WIDTH,
    MAX_STEPS,
    is_plaintext_secret,
    is_secret_key,
    lint,
    lint_findings,
)
from maestro.services.compiler.server import create_server
from maestro.services.compiler.service import Compiler, Source
from maestro.services.compiler.source import parse_source
from maestro.services.compiler.validate import validate
from maestro.services.compiler.workflow_schema import SCHEMA_ID

pytestmark = pytest.mark.timeout(30)

DSL_DOC = (Path(__file__).resolve().parents[3] / "docs" / "dsl.md").read_text()
CLEAN = b"""\
name: clean
labels: {classification: internal}
steps:
  - {id: a, type: task, handler: echo, timeout: 5s}
"""


def codes(text: str | bytes, disabled: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    content = text.encode() if isinstance(text, str) else text
    return [(f.code, f.path) for f, _ in lint(parse_source(content), disabled).findings]


def test_the_dsl_reference_example_lints_as_documented() -> None:
    example = DSL_DOC.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert sorted(codes(example)) == [
        ("MISSING_TIMEOUT", "/steps/3/timeout"),  # review (human)
        ("MISSING_TIMEOUT", "/steps/6/timeout"),  # child (subworkflow)
        ("UNREACHABLE_STEP", "/steps/4/needs"),  # notify-all needs both branches
    ]


def test_rule_severities_are_those_of_the_dsl_reference() -> None:
    errors = re.search(r"Errors: (.*?)\.\n", DSL_DOC, re.S)
    warnings = re.search(r"Warnings \(lint\): (.*?)\.\n", DSL_DOC, re.S)
    assert errors
    assert warnings
    documented_errors = set(re.findall(r"`([A-Z_]+)`", errors.group(1)))
    documented_warnings = set(re.findall(r"`([A-Z_]+)`", warnings.group(1)))
    for rule, severity in LINT_RULES.items():
        assert rule in (documented_errors if severity == "error" else documented_warnings)
    assert documented_warnings == {r for r, s in LINT_RULES.items() if s == "warning"}


def test_lint_rules_are_not_validation_errors() -> None:
    text = """\
name: risky
steps:
  - {id: a, type: task, handler: echo, retry: {maxAttempts: 0}, config: {password: hunter2}}
  - id: each
    type: loop
    loop: {items: "[1]", parallelism: 1000, body: {type: task, handler: echo}}
"""
    assert validate(parse_source(text.encode())).findings == []
    assert sorted(codes(text)) == [
        ("FANOUT_LIMIT", "/steps/1/loop/parallelism"),
        ("MISSING_POLICY_LABEL", "/labels/classification"),
        ("MISSING_TIMEOUT", "/steps/0/timeout"),
        ("MISSING_TIMEOUT", "/steps/1/loop/body/timeout"),
        ("PLAINTEXT_SECRET", "/steps/0/config/password"),
        ("UNBOUNDED_RETRY", "/steps/0/retry/maxAttempts"),
    ]


def test_findings_carry_severity_message_hint_and_position() -> None:
    text = "name: x\nlabels: {classification: internal}\nsteps:\n  - {id: a, type: task}\n"
    ((finding, position),) = lint(parse_source(text.encode())).findings
    assert (finding.code, finding.severity) == ("MISSING_TIMEOUT", "warning")
    assert "'a'" in finding.message
    assert "timeout: 30s" in finding.hint
    assert position == (4, 5)  # the step, as it has no `timeout` to point at


def test_an_unknown_classification_is_a_missing_policy_label() -> None:
    text = """\
name: x
labels: {classification: secrett}
steps:
  - {id: a, type: delay, delay: {duration: 1s}}
"""
    ((code, path),) = codes(text)
    assert (code, path) == ("MISSING_POLICY_LABEL", "/labels/classification")


def test_disabled_rules_are_suppressed() -> None:
    text = "name: x\nsteps:\n  - {id: a, type: task}\n"
    assert [c for c, _ in codes(text)] == ["MISSING_POLICY_LABEL", "MISSING_TIMEOUT"]
    assert codes(text, ("MISSING_TIMEOUT", "MISSING_POLICY_LABEL")) == []


@pytest.mark.parametrize("rule", ["NO_SUCH_RULE", "CYCLE", "missing_timeout"])
def test_only_lint_rules_can_be_disabled(rule: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        Compiler().lint(Source(CLEAN), ["MISSING_TIMEOUT", rule])
    assert [v.field for v in caught.value.field_violations] == ["disabled_rules[1]"]


def test_more_than_the_step_limit() -> None:
    steps: list[dict[str, Any]] = [{"id": "s0", "type": "task", "timeout": "1s"}]
    steps += [
        {"id": f"s{i}", "type": "task", "timeout": "1s", "needs": [f"s{i - 1}"]}
        for i in range(1, MAX_STEPS + 1)
    ]
    doc = {"name": "big", "labels": {"classification": "internal"}, "steps": steps}
    assert [(f.code, f.path) for f in lint_findings(doc)] == [
        ("FANOUT_LIMIT", f"/steps/{MAX_STEPS}")
    ]


def test_a_level_at_the_width_limit_is_fine() -> None:
    steps: list[dict[str, Any]] = [{"id": "root", "type": "task", "timeout": "1s"}]
    steps += [
        {"id": f"w{i}", "type": "task", "timeout": "1s", "needs": ["root"]}
        for i in range(MAX_LEVEL_WIDTH)
    ]
    doc = {"name": "wide", "labels": {"classification": "internal"}, "steps": steps}
    assert list(lint_findings(doc)) == []
    steps.append({"id": "one-more", "type": "task", "timeout": "1s", "needs": ["root"]})
    ((finding),) = lint_findings(doc)
    assert (finding.code, finding.path) == ("FANOUT_LIMIT", f"/steps/{MAX_LEVEL_WIDTH + 1}")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "apiKey",
        "api_key",
        "X-Api-Key",
        "APIKEY",
        "Authorization",
        "access_token",
        "clientSecret",
        "private_key",
        "secret",
        "credentials",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["max_tokens", "token_url", "secret_name", "author", "keys", "tokenizer", "url"]
)
def test_keys_that_only_look_like_secrets(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("password", "hunter2", True),
        ("password", "secret://db-password", False),
        ("Authorization", "Bearer secret://api-token", False),
        ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9", True),
        ("password", "", False),
        ("model", "sk-proj-abcdefghijklmnop0123", True),
        ("repo", "ghp_abcdefghijklmnopqrstuvwxyz0123", True),
        ("key_id", "AKIAIOSFODNN7EXAMPLE", True),
        ("dsn", "postgres://app:s3cret@db:5432/app", True),
        ("dsn", "postgres://db:5432/app", False),
        ("task", "ask-a-human", False),
    ],
)
def test_plaintext_secret_values(key: str, value: str, secret: bool) -> None:
    assert is_plaintext_secret(key, value) is secret


def test_lint_of_a_syntax_error_is_a_diagnostic() -> None:
    result = Compiler().lint(Source(b"name: x\nsteps: [\n"))
    ((finding, position),) = result.report.findings
    assert finding.code == "SYNTAX_ERROR"
    assert position[0] > 0
    assert not result.valid


# Through a real server --------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[CompilerClient]:
    server = await create_server(CompilerSettings(port=0, metrics_port=None))
    channel = open_channel(server.address, caller="test", services=CompilerClient.SERVICES)
    try:
        yield CompilerClient(channel, timeout=10, address=server.address)
    finally:
        await channel.close()
        await server.stop(0)


def _request(content: bytes, *disabled: str) -> pb.LintWorkflowRequest:
    return pb.LintWorkflowRequest(
        source=source_pb2.WorkflowSource(content=content), disabled_rules=disabled
    )


@pytest.mark.integration
async def test_lint_workflow_rpc(client: CompilerClient) -> None:
    clean = await client.lint_workflow(_request(CLEAN))
    assert clean.valid
    assert list(clean.diagnostics) == []

    risky = CLEAN.replace(b"timeout: 5s}", b"retry: {maxAttempts: 0}}")
    response = await client.lint_workflow(_request(risky))
    assert not response.valid
    assert [(d.code, d.severity, d.path) for d in response.diagnostics] == [
        ("MISSING_TIMEOUT", diagnostic_pb2.SEVERITY_WARNING, "/steps/0/timeout"),
        ("UNBOUNDED_RETRY", diagnostic_pb2.SEVERITY_ERROR, "/steps/0/retry/maxAttempts"),
    ]
    assert response.diagnostics[1].position.line == 4
    assert response.diagnostics[1].hint

    quiet = await client.lint_workflow(_request(risky, "UNBOUNDED_RETRY", "MISSING_TIMEOUT"))
    assert quiet.valid
    assert list(quiet.diagnostics) == []

    with pytest.raises(InvalidArgumentError) as caught:
        await client.lint_workflow(_request(CLEAN, "NOT_A_RULE"))
    assert [v.field for v in caught.value.field_violations] == ["disabled_rules[0]"]


@pytest.mark.integration
async def test_get_workflow_schema_rpc(client: CompilerClient) -> None:
    response = await client.get_workflow_schema()
    assert response.schema_id == SCHEMA_ID
    assert json.loads(response.schema_json)["$id"] == SCHEMA_ID
