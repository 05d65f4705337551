"""End to end through the real gateway and services, on both backends:
create -> publish -> execute with dev JWTs yields a signed version receipt and
an execution evidence bundle (REST and CLI) that ``maestro verify`` accepts
with the signer's published keys, and rejects once a byte changes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from maestro.cli.main import app
from maestro.runtime import provenance
from tests.devgateway import DevGateway
from tests.integration.execution.support import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GREETER = """
name: greeter
labels: {classification: public}
steps:
  - {id: hi, type: task, handler: echo, timeout: 5s, input: {who: '"auditors"'}}
  - {id: done, type: task, handler: noop, timeout: 5s, needs: [hi]}
"""


@pytest.fixture
async def api(mesh: Mesh, tmp_path: Path) -> AsyncIterator[DevGateway]:
    async with mesh.gateway(tmp_path / "gateway") as gateway:
        yield gateway


async def _until(
    api: DevGateway, path: str, who: dict[str, str], done: Any, within: float = 20.0
) -> httpx.Response:
    """GETs ``path`` until ``done(response)``; bounded by ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await api.http.get(path, headers=who)
        if done(response) or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.1)


def _verify(bundle: Path, keys: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["verify", str(bundle), "--keys", str(keys), "-o", "json"])
    report: dict[str, Any] = json.loads(result.output)
    return result.exit_code, report


async def test_publish_and_run_yield_verifiable_receipts_and_evidence(
    mesh: Mesh, api: DevGateway, tmp_path: Path
) -> None:
    author = api.token("acme", "ana", "author")
    publisher = api.token("acme", "pete", "publisher")
    operator = api.token("acme", "olga", "operator")
    auditor = api.token("acme", "aud", "auditor")
    outsider = api.token("globex", "eve", "admin")

    created = await api.http.post(
        "/api/workflows?workflowId=greeter",
        headers={**author, "content-type": "application/yaml"},
        content=GREETER,
    )
    assert created.status_code == 201, created.text
    published = await api.http.post("/api/workflows/greeter/publish", headers=publisher, json={})
    assert published.status_code == 201, published.text

    # Publishing signs a version-manifest receipt (inline, or a moment later).
    version = (
        await _until(
            api,
            "/api/workflows/greeter/versions/1.0.0",
            auditor,
            lambda r: r.status_code == 200 and r.json().get("receipt"),
        )
    ).json()
    version_receipt = version["receipt"]
    assert version_receipt.startswith("receipts/"), version

    started = await api.http.post(
        "/api/workflows/greeter/execute",
        headers={**operator, "Idempotency-Key": str(uuid.uuid4())},
        json={},
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["executionId"]
    evidence_path = f"/api/executions/{execution_id}/evidence"

    finished = await _until(
        api,
        f"/api/executions/{execution_id}",
        operator,
        lambda r: r.json().get("state") == "EXECUTION_STATE_SUCCEEDED",
    )
    assert finished.json()["state"] == "EXECUTION_STATE_SUCCEEDED", finished.text

    # The bundle: 409 RECEIPT_PENDING until the receipt is signed, then 200.
    downloaded = await _until(api, evidence_path, auditor, lambda r: r.status_code != 409)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"] == "application/gzip"
    bundle = downloaded.content
    assert downloaded.headers["repr-digest"] == (
        f"sha-256=:{provenance.b64encode(bytes.fromhex(provenance.sha256_hex(bundle)))}:"
    )
    execution = (await api.http.get(f"/api/executions/{execution_id}", headers=auditor)).json()
    execution_receipt = execution["receipt"]
    assert downloaded.headers["x-maestro-receipts"] == f"{execution_receipt},{version_receipt}"

    # Verified offline against the keys the gateway publishes.
    jwks = await api.http.get("/.well-known/jwks.json")
    keys = tmp_path / "jwks.json"
    keys.write_bytes(jwks.content)
    path = tmp_path / "evidence.tar.gz"
    path.write_bytes(bundle)
    code, report = _verify(path, keys)
    assert code == 0, report
    assert report["keysPinned"] and report["receipts"] == [execution_receipt, version_receipt]
    links = [f for f in report["findings"] if f["check"] == "LINK"]
    assert [f["status"] for f in links] == ["PASSED"]
    assert "workflows/greeter/versions/1.0.0" in links[0]["message"]

    # What the receipts say, read from the bundle itself.
    files = provenance.read_bundle(bundle)
    statements = {
        name: provenance.parse_statement(
            provenance.envelope_from_json(files[f"receipts/{name.split('/')[1]}.dsse.json"]).payload
        )
        for name in (execution_receipt, version_receipt)
    }
    ran = statements[execution_receipt]["predicate"]
    assert ran["execution"] == f"executions/{execution_id}"
    assert ran["state"] == "SUCCEEDED" and ran["versionReceipt"] == version_receipt
    assert ran["startedBy"]["tenant"] == "acme" and ran["startedBy"]["subject"] == "olga"
    assert [s["stepId"] for s in ran["steps"]] == ["hi", "done"]
    assert ran["outputsDigest"] == provenance.sha256_hex(
        provenance.canonical_json(execution.get("outputs", {}))
    )
    manifest = statements[version_receipt]["predicate"]
    assert manifest["workflow"] == "workflows/greeter" and manifest["version"] == "1.0.0"
    assert manifest["publishedBy"]["subject"] == "pete"
    assert manifest["definitionDigest"] == ran["definitionDigest"]

    # The CLI downloads the same evidence, as the operator of the same tenant.
    cli_path = tmp_path / "cli-evidence.tar.gz"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [
            "executions",
            "evidence",
            execution_id,
            "--out",
            str(cli_path),
            "--address",
            mesh.scheduler_address,
            "--signer-address",
            f"127.0.0.1:{mesh.signer.port}",
            "-o",
            "json",
        ],
        env={
            "MAESTRO_CLI_TENANT": "acme",
            "MAESTRO_CLI_SUBJECT": "olga",
            "MAESTRO_CLI_ROLES": '["operator"]',
        },
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["receipts"] == [execution_receipt, version_receipt]
    assert summary["sha256"] == provenance.sha256_hex(cli_path.read_bytes())
    assert _verify(cli_path, keys)[0] == 0

    # One byte changed anywhere: maestro verify fails and says where.
    tampered = bytearray(bundle)
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    code, report = _verify(path, keys)
    assert code == 1 and not report["ok"]
    assert any(f["status"] == "FAILED" and f["message"] for f in report["findings"])

    # Another tenant cannot even see the execution.
    hidden = await api.http.get(evidence_path, headers=outsider)
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["reason"] == "EXECUTION_NOT_FOUND"
