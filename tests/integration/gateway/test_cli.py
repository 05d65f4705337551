"""``maestro workflows ...`` against a real registry and compiler: output,
``--output json`` and exit codes (0 ok, 1 invalid/failed check, 2 usage,
3 not found, 4 conflict, 5 unavailable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from maestro.cli.main import app
from tests.conftest import free_port
from tests.integration.gateway.conftest import BackgroundMesh
from tests.integration.gateway.test_lifecycle import FLOW_JSON, FLOW_V2_YAML, FLOW_YAML

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BAD_YAML = b"""\
name: bad
steps:
  - id: a
    type: task
    needs: [zz]
  - id: a
    type: task
"""


class Maestro:
    """Runs the CLI in-process against the background mesh."""

    def __init__(self, mesh: BackgroundMesh, tmp_path: Path) -> None:
        self.env = {
            "MAESTRO_CLI_REGISTRY_ADDRESS": mesh.registry_address,
            "MAESTRO_CLI_COMPILER_ADDRESS": mesh.compiler_address,
            "COLUMNS": "200",
        }
        self.dir = tmp_path
        self.runner = CliRunner()

    def file(self, name: str, content: bytes) -> str:
        path = self.dir / name
        path.write_bytes(content)
        return str(path)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(app, ["workflows", *args], env={**self.env, **(env or {})})

    def json(self, *args: str) -> Any:
        result = self(*args, "--output", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def maestro(background_mesh: BackgroundMesh, tmp_path: Path) -> Maestro:
    return Maestro(background_mesh, tmp_path)


def test_lifecycle_with_tables_and_json(maestro: Maestro) -> None:
    flow = maestro.file("flow.yaml", FLOW_YAML)

    valid = maestro("validate", flow)
    assert valid.exit_code == 0, valid.output
    assert f"{flow}: valid (0 error(s), 0 warning(s))" in valid.stdout

    created = maestro("create", flow, "--id", "order-routing")
    assert created.exit_code == 0, created.output
    assert "created workflows/order-routing" in created.stdout
    assert "0.1.0-draft" in created.stdout

    shown = maestro.json("get", "order-routing")
    assert shown["id"] == "order-routing"
    assert shown["owner"] == "local-admin"
    source = maestro("get", "order-routing", "--source")
    assert source.stdout == FLOW_YAML.decode()

    published = maestro("publish", "order-routing", "-m", "first release")
    assert published.exit_code == 0, published.output
    assert "published workflows/order-routing/versions/1.0.0" in published.stdout
    assert "first release" in published.stdout

    v2 = maestro.file("flow-v2.yaml", FLOW_V2_YAML)
    assert maestro("update", "order-routing", v2).exit_code == 0

    diff = maestro("diff", "order-routing", "--base", "1.0.0")
    assert diff.exit_code == 0, diff.output
    assert "1.0.0 -> draft: BREAKING (required bump: major)" in diff.stdout
    assert "breaking: OUTPUT_REMOVED" in diff.stdout
    gate = maestro("diff", "order-routing", "--base", "1.0.0", "--fail-on-breaking")
    assert gate.exit_code == 1
    verdict = maestro.json("diff", "order-routing", "--base", "1.0.0")
    assert verdict["compatibility"] == "COMPATIBILITY_BREAKING"

    # A minor bump of a breaking change is a conflict (exit 4).
    refused = maestro("publish", "order-routing", "--bump", "minor")
    assert refused.exit_code == 4
    assert "SEMVER_BUMP_REQUIRED" in refused.stderr
    major = maestro.json("publish", "order-routing", "--bump", "major")
    assert major["version"]["version"] == "2.0.0"

    versions = maestro("versions", "order-routing")
    assert versions.exit_code == 0
    assert versions.stdout.index("2.0.0") < versions.stdout.index("1.0.0")
    assert "breaking" in versions.stdout
    listed = maestro.json("versions", "order-routing")
    assert [v["version"] for v in listed["versions"]] == ["2.0.0", "1.0.0"]

    promoted = maestro.json("promote", "order-routing", "1.0.0", "--alias", "stable")
    assert promoted["aliases"] == {"stable": "1.0.0"}

    cloned = maestro("clone", "order-routing", "--version", "1.0.0", "--id", "order-copy")
    assert cloned.exit_code == 0, cloned.output
    assert "cloned into workflows/order-copy" in cloned.stdout

    table = maestro("list", "--tag", "orders")
    assert table.exit_code == 0
    assert "order-routing" in table.stdout
    assert "order-copy" in table.stdout
    only_published = maestro.json("list", "--state", "published")
    assert [w["id"] for w in only_published["workflows"]] == ["order-routing"]


def test_invalid_definitions_print_source_locations(maestro: Maestro) -> None:
    bad = maestro.file("bad.yaml", BAD_YAML)
    checked = maestro("validate", bad)
    assert checked.exit_code == 1
    assert f"{bad}:5:13: UNKNOWN_STEP_REF step 'a' needs unknown step 'zz'" in checked.stdout
    assert f"{bad}:6:9: DUPLICATE_STEP_ID" in checked.stdout
    assert f"{bad}: invalid (2 error(s), 0 warning(s))" in checked.stdout

    as_json = maestro("validate", bad, "-o", "json")
    assert as_json.exit_code == 1
    diagnostics = json.loads(as_json.stdout)["diagnostics"]
    assert {d["code"] for d in diagnostics} == {"UNKNOWN_STEP_REF", "DUPLICATE_STEP_ID"}

    # Creating it fails the same way, with the compiler's positions.
    refused = maestro("create", bad)
    assert refused.exit_code == 1
    assert "INVALID_DEFINITION" in refused.stderr
    assert f"{bad}:5:13: UNKNOWN_STEP_REF" in refused.stderr

    broken = maestro.file("broken.json", b'{"name": "x",\n "steps": [}\n')
    syntax = maestro("create", broken)
    assert syntax.exit_code == 1
    assert f"{broken}:2:12: SOURCE_SYNTAX_ERROR Expecting value" in syntax.stderr
    problem = maestro("create", broken, "-o", "json")
    assert problem.exit_code == 1
    assert json.loads(problem.stdout)["reason"] == "SOURCE_SYNTAX_ERROR"

    untimed = maestro.file("untimed.yaml", b"name: u\nsteps:\n  - {id: a, type: task}\n")
    linted = maestro("validate", untimed, "--lint")
    assert linted.exit_code == 0
    assert "MISSING_TIMEOUT" in linted.stdout
    quiet = maestro("validate", untimed, "--lint", "--disable", "MISSING_TIMEOUT", "-o", "json")
    assert "MISSING_TIMEOUT" not in quiet.stdout


def test_simulate(maestro: Maestro) -> None:
    flow = maestro.file("etl.json", json.dumps(FLOW_JSON).encode())
    mocks = maestro.file("mocks.yaml", b"extract: {output: {rows: 3}, duration: 2s}\n")
    result = maestro("simulate", flow, "--mocks", f"@{mocks}", "--cost-table", '{"task": 1.5}')
    assert result.exit_code == 0, result.output
    assert "critical path: extract -> load" in result.stdout
    assert "succeeded in" in result.stdout
    assert "estimated cost 3.00 cents" in result.stdout

    failed = maestro("simulate", flow, "--mocks", '{"extract": {"fail": true}}', "-o", "json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["succeeded"] is False

    bad_option = maestro("simulate", flow, "--mocks", '{"extract": {"nope": 1}}')
    assert bad_option.exit_code == 2
    assert "--mocks" in bad_option.output


def test_exit_codes(maestro: Maestro, tmp_path: Path) -> None:
    flow = maestro.file("flow.yaml", FLOW_YAML)
    missing = maestro("get", "no-such-flow")
    assert missing.exit_code == 3
    assert "WORKFLOW_NOT_FOUND" in missing.stderr
    problem = maestro("get", "no-such-flow", "-o", "json")
    assert problem.exit_code == 3
    assert json.loads(problem.stdout)["status"] == 404

    assert maestro("create", flow, "--id", "taken-flow").exit_code == 0
    taken = maestro("create", flow, "--id", "taken-flow")
    assert taken.exit_code == 4
    assert "ALREADY_EXISTS" in taken.stderr
    stale = maestro("update", "taken-flow", flow, "--etag", "not-the-etag")
    assert stale.exit_code == 4

    assert maestro("create", str(tmp_path / "nope.yaml")).exit_code == 2
    assert maestro("publish", "taken-flow", "--bump", "huge").exit_code == 2
    assert maestro("get", "Bad Id").exit_code == 2

    down = {"MAESTRO_CLI_REGISTRY_ADDRESS": f"127.0.0.1:{free_port()}"}
    unavailable = maestro("get", "taken-flow", env={**down, "MAESTRO_CLI_TIMEOUT_SECONDS": "2"})
    assert unavailable.exit_code == 5
    assert "DEPENDENCY_UNAVAILABLE" in unavailable.stderr

    helped = maestro("--help")
    assert helped.exit_code == 0
    assert "3 not found" in helped.stdout
