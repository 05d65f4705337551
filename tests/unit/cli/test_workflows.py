"""``maestro workflows`` without servers: reading files and options, settings,
help, and usage errors (exit 2) caught before any call."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from maestro.cli.main import app
from maestro.cli.settings import CliSettings
from maestro.cli.workflows import parse_value, read_document, simulate_request
from maestro.common.v1 import source_pb2
from maestro.runtime.context import Principal


def test_read_document_takes_the_format_from_the_extension(tmp_path: Path) -> None:
    for name, fmt in [
        ("a.json", source_pb2.SOURCE_FORMAT_JSON),
        ("a.yaml", source_pb2.SOURCE_FORMAT_YAML),
        ("a.YML", source_pb2.SOURCE_FORMAT_YAML),
        ("a.txt", source_pb2.SOURCE_FORMAT_UNSPECIFIED),
    ]:
        path = tmp_path / name
        path.write_bytes(b"name: x\n")
        document = read_document(str(path))
        assert document.source.format == fmt
        assert document.source.content == b"name: x\n"
        assert document.source.filename == name
        assert document.filename == str(path)


def test_read_document_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter):
        read_document(str(tmp_path / "nope.yaml"))


def test_parse_value_inline_json_or_at_file(tmp_path: Path) -> None:
    assert parse_value('{"a": [1, 2]}', "--inputs") == {"a": [1, 2]}
    yaml_file = tmp_path / "inputs.yaml"
    yaml_file.write_text("amount: 5\ncustomer: ana\n")
    assert parse_value(f"@{yaml_file}", "--inputs") == {"amount": 5, "customer": "ana"}
    with pytest.raises(typer.BadParameter):
        parse_value("{not json", "--inputs")
    with pytest.raises(typer.BadParameter):
        parse_value(f"@{tmp_path / 'missing.json'}", "--inputs")


def test_simulate_request_maps_options_to_the_proto() -> None:
    request = simulate_request(
        source_pb2.WorkflowSource(content=b"name: x"),
        inputs={"amount": 5},
        mocks={"a": {"output": {"ok": True}, "fail": False, "duration": "1.5s"}},
        cost_table={"task": 2},
        default_task_duration="0.25s",
    )
    assert request.inputs["amount"] == 5
    assert request.mocks["a"].output["ok"] is True
    assert (request.mocks["a"].duration.seconds, request.mocks["a"].duration.nanos) == (
        1,
        500_000_000,
    )
    assert request.cost_table["task"] == 2.0
    assert request.default_task_duration.nanos == 250_000_000


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"mocks": {"a": {"unknown": 1}}}, "--mocks"),
        ({"mocks": []}, "--mocks"),
        ({"cost_table": {"task": "cheap"}}, "--cost-table"),
        ({"default_task_duration": "250ms"}, "--default-task-duration"),
    ],
)
def test_simulate_request_rejects_bad_options(options: dict[str, object], hint: str) -> None:
    values: dict[str, object] = {
        "inputs": {},
        "mocks": {},
        "cost_table": {},
        "default_task_duration": None,
        **options,
    }
    with pytest.raises(typer.BadParameter) as caught:
        simulate_request(source_pb2.WorkflowSource(), **values)  # type: ignore[arg-type]
    assert caught.value.param_hint == hint


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CliSettings().registry_address == "127.0.0.1:50052"
    assert CliSettings().compiler_address == "127.0.0.1:50051"
    monkeypatch.setenv("MAESTRO_CLI_REGISTRY_ADDRESS", "10.0.0.1:1")
    monkeypatch.setenv("MAESTRO_CLI_TENANT", "acme")
    monkeypatch.setenv("MAESTRO_CLI_ROLES", '["author"]')
    monkeypatch.setenv("MAESTRO_CLI_CLEARANCE", "internal")
    settings = CliSettings()
    assert settings.registry_address == "10.0.0.1:1"
    assert settings.principal() == Principal(
        tenant="acme",
        subject="local-admin",
        roles=("author",),
        clearance="internal",
        purpose="operations",
        legal_basis="legitimate-interests",
        reason_for_access="local development",
    )


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = CliRunner().invoke(app, ["workflows", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in (
        "create",
        "get",
        "list",
        "validate",
        "publish",
        "versions",
        "diff",
        "clone",
        "promote",
        "simulate",
    ):
        assert command in result.stdout
    assert "2 usage error" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["create"],
        ["publish", "w-1", "--bump", "huge"],
        ["list", "--state", "archived"],
        ["list", "--updated-since", "yesterday"],
        ["simulate", "missing.yaml"],
        ["get", "w-1", "--output", "xml"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["workflows", *args])
    assert result.exit_code == 2, result.output
