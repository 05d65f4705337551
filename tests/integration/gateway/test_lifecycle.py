"""The authoring API over HTTP through a real gateway, registry and compiler:
the whole lifecycle (create, validate, update, publish, diff, promote, clone,
simulate, freeze, delete), templates and the builder, identity propagation,
and every kind of request error as the right status and problem+json body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from maestro.services.gateway.server import create_server as create_gateway
from tests.integration.gateway.conftest import Gateway, gateway_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PROBLEM = "application/problem+json"
YAML = {"content-type": "application/yaml"}
JSON = {"content-type": "application/json"}

FLOW_YAML = b"""\
name: order-routing
description: Route orders by value
tags: [orders]
labels: {classification: internal}
inputSchema:
  type: object
  required: [amount]
  properties: {amount: {type: number}}
outputs: {risk: steps.score.output.risk}
steps:
  - id: score
    type: task
    handler: echo
    timeout: 5s
    outputSchema: {type: object, properties: {risk: {type: number}}}
  - id: decide
    type: condition
    needs: [score]
    condition: {expression: "steps.score.output.risk < 0.5", thenSteps: [fast], elseSteps: [review]}
  - id: fast
    type: task
    handler: echo
    needs: [decide]
    timeout: 5s
  - id: review
    type: task
    handler: echo
    needs: [decide]
    timeout: 5s
"""

# The same workflow without its output: a breaking change.
FLOW_V2_YAML = FLOW_YAML.replace(b"outputs: {risk: steps.score.output.risk}\n", b"")

FLOW_JSON: dict[str, Any] = {
    "name": "nightly-etl",
    "tags": ["etl"],
    "steps": [
        {"id": "extract", "type": "task", "handler": "echo", "timeout": "30s"},
        {"id": "load", "type": "task", "handler": "echo", "needs": ["extract"], "timeout": "30s"},
    ],
}

INVALID_YAML = b"""\
name: broken
steps:
  - id: a
    type: task
    needs: [b]
  - id: b
    type: task
    needs: [a]
  - id: c
    type: task
    needs: [ghost]
"""


def assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["reason"] == reason
    assert body["domain"] == "maestro.dev"
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def in_acme(subject: str, roles: str, **more: str) -> dict[str, str]:
    """Dev-mode identity headers of a caller in tenant ``acme`` (``more``:
    ``clearance``, ``purpose``, ``legal_basis``, ...)."""
    extra = {f"x-maestro-{k.replace('_', '-')}": v for k, v in more.items()}
    return {
        "x-maestro-tenant": "acme",
        "x-maestro-subject": subject,
        "x-maestro-roles": roles,
        **extra,
    }


async def create(gateway: Gateway, content: bytes, workflow_id: str, **headers: str) -> Any:
    response = await gateway.http.post(
        "/api/workflows",
        params={"workflowId": workflow_id},
        content=content,
        headers={**YAML, **headers},
    )
    assert response.status_code == 201, response.text
    return response


async def test_full_authoring_lifecycle(gateway: Gateway) -> None:
    http = gateway.http

    # Validate before saving: a valid document, then one with several errors.
    valid = await http.post("/api/workflows/validate", content=FLOW_YAML, headers=YAML)
    assert valid.status_code == 200
    assert valid.json()["valid"] is True
    assert len(valid.json()["digest"]) == 64
    invalid = await http.post("/api/workflows/validate", content=INVALID_YAML, headers=YAML)
    assert invalid.status_code == 200
    assert invalid.json()["valid"] is False
    codes = {(d["code"], d["path"]) for d in invalid.json()["diagnostics"]}
    assert ("UNKNOWN_STEP_REF", "/steps/2/needs/0") in codes
    assert any(code == "CYCLE" for code, _ in codes)
    ghost = next(d for d in invalid.json()["diagnostics"] if d["code"] == "UNKNOWN_STEP_REF")
    assert ghost["position"] == {"line": 11, "column": 13}

    # Create from YAML, with an idempotency key: a retry returns the same workflow.
    created = await create(gateway, FLOW_YAML, "order-routing", **{"Idempotency-Key": "k-1"})
    workflow = created.json()
    assert workflow["id"] == "order-routing"
    assert workflow["name"] == "workflows/order-routing"
    assert workflow["state"] == "WORKFLOW_STATE_DRAFT"
    assert workflow["owner"] == "local-admin"
    assert workflow["tenant"] == "default"
    assert workflow["draft"]["version"] == "0.1.0-draft"
    assert workflow["draft"]["sourceText"] == FLOW_YAML.decode()
    assert created.headers["location"] == "/api/workflows/order-routing"
    assert created.headers["etag"] == f'"{workflow["etag"]}"'
    retried = await create(gateway, FLOW_YAML, "order-routing", **{"Idempotency-Key": "k-1"})
    assert retried.json()["name"] == workflow["name"]

    # Read: draft and (not yet) a published version; the ETag header.
    got = await http.get("/api/workflows/order-routing")
    assert got.status_code == 200
    assert got.json()["draft"]["digest"] == workflow["draft"]["digest"]
    assert "latestVersion" not in got.json()
    etag = got.headers["etag"]

    # Publish the first version.
    published = await http.post("/api/workflows/order-routing/publish", json={"changelog": "first"})
    assert published.status_code == 201, published.text
    v1 = published.json()["version"]["version"]
    assert v1 == "1.0.0"
    assert published.headers["location"] == f"/api/workflows/order-routing/versions/{v1}"
    assert published.json()["workflow"]["state"] == "WORKFLOW_STATE_PUBLISHED"
    assert published.json()["workflow"]["latestVersion"]["version"] == v1

    # A stale If-Match is a 409 ETAG_MISMATCH; the current one updates the draft.
    stale = await http.put(
        "/api/workflows/order-routing",
        content=FLOW_V2_YAML,
        headers={**YAML, "If-Match": etag},
    )
    assert_problem(stale, 409, "ETAG_MISMATCH")
    current = (await http.get("/api/workflows/order-routing")).headers["etag"]
    updated = await http.put(
        "/api/workflows/order-routing",
        content=FLOW_V2_YAML,
        headers={**YAML, "If-Match": current},
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] != current
    assert "outputs" not in updated.json()["draft"]["definition"]

    # Diff the draft against the published version: removing an output breaks.
    diff = await http.get(
        "/api/workflows/order-routing/diff", params={"base": v1, "target": "draft"}
    )
    assert diff.status_code == 200, diff.text
    verdict = diff.json()["diff"]
    assert verdict["compatibility"] == "COMPATIBILITY_BREAKING"
    assert verdict["requiredBump"] == "SEMVER_BUMP_MAJOR"
    assert verdict["breakingChanges"]
    same = await http.get("/api/workflows/order-routing/diff", params={"base": v1, "to": v1})
    assert same.json()["diff"]["compatibility"] == "COMPATIBILITY_IDENTICAL"

    # A minor bump is refused for a breaking change; a major one publishes 2.0.0.
    refused = await http.post("/api/workflows/order-routing/publish", json={"bump": "minor"})
    assert_problem(refused, 400, "SEMVER_BUMP_REQUIRED")
    major = await http.post(
        "/api/workflows/order-routing/publish",
        json={"bump": "major", "changelog": "drop the risk output"},
    )
    assert major.status_code == 201, major.text
    assert major.json()["version"]["version"] == "2.0.0"

    # Versions, newest first, with diff metadata; one version by semver.
    versions = await http.get("/api/workflows/order-routing/versions")
    assert versions.status_code == 200
    listed = versions.json()["versions"]
    assert [v["version"] for v in listed] == ["2.0.0", v1]
    assert listed[0]["diffFromPrevious"]["compatibility"] == "COMPATIBILITY_BREAKING"
    assert listed[0]["changelog"] == "drop the risk output"
    one = await http.get(f"/api/workflows/order-routing/versions/{v1}")
    assert one.status_code == 200
    assert one.json()["definition"]["outputs"] == {"risk": "steps.score.output.risk"}
    assert one.json()["workflowId"] == "order-routing"

    # Promote: point `stable` at 1.0.0, then read through the alias.
    promoted = await http.post(
        "/api/workflows/order-routing/promote", json={"alias": "stable", "version": v1}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["aliases"]["stable"] == v1
    stable = await http.get("/api/workflows/order-routing/versions/stable")
    assert stable.json()["version"] == v1

    # Clone the published 1.0.0 into a new workflow.
    cloned = await http.post(
        "/api/workflows/order-routing/clone",
        json={"version": v1, "workflowId": "order-routing-copy", "name": "order-routing-2"},
    )
    assert cloned.status_code == 201, cloned.text
    assert cloned.json()["id"] == "order-routing-copy"
    assert cloned.json()["displayName"] == "order-routing-2"
    assert cloned.json()["draft"]["definition"]["outputs"] == {"risk": "steps.score.output.risk"}

    # Freeze: publishing is refused until unfrozen.
    frozen = await http.post(
        "/api/workflows/order-routing/freeze", json={"reason": "release freeze"}
    )
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["frozen"] is True
    assert frozen.json()["frozenReason"] == "release freeze"
    blocked = await http.post("/api/workflows/order-routing/publish", json={"bump": "patch"})
    assert_problem(blocked, 400, "WORKFLOW_FROZEN")
    thawed = await http.post("/api/workflows/order-routing/freeze", json={"frozen": False})
    assert thawed.json()["frozen"] is False

    # List with the friendly filters.
    by_tag = await http.get("/api/workflows", params={"tag": "orders"})
    assert by_tag.status_code == 200, by_tag.text
    # Newest update first: the original was frozen and thawed after the clone.
    assert [w["id"] for w in by_tag.json()["workflows"]] == ["order-routing", "order-routing-copy"]
    published_only = await http.get("/api/workflows", params={"state": "published"})
    assert [w["id"] for w in published_only.json()["workflows"]] == ["order-routing"]
    paged = await http.get("/api/workflows", params={"pageSize": 1})
    assert len(paged.json()["workflows"]) == 1
    assert paged.json()["nextPageToken"]
    rest = await http.get(
        "/api/workflows", params={"pageSize": 1, "pageToken": paged.json()["nextPageToken"]}
    )
    assert rest.json()["workflows"][0]["id"] != paged.json()["workflows"][0]["id"]
    future = await http.get("/api/workflows", params={"updatedSince": "2999-01-01T00:00:00Z"})
    assert future.json()["workflows"] == []

    # Soft delete: gone from reads and lists, still there with showDeleted.
    deleted = await http.delete("/api/workflows/order-routing-copy")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "WORKFLOW_STATE_DELETED"
    assert_problem(await http.get("/api/workflows/order-routing-copy"), 404, "WORKFLOW_NOT_FOUND")
    again = await http.get("/api/workflows/order-routing-copy", params={"showDeleted": "true"})
    assert again.json()["state"] == "WORKFLOW_STATE_DELETED"


async def test_json_body_and_simulation(gateway: Gateway) -> None:
    http = gateway.http
    created = await http.post(
        "/api/workflows", content=json.dumps(FLOW_JSON).encode(), headers=JSON
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("wf-")
    assert body["displayName"] == "nightly-etl"
    assert [s["id"] for s in body["draft"]["definition"]["steps"]] == ["extract", "load"]

    # Simulate an object definition with mocks and a cost table.
    simulated = await http.post(
        "/api/workflows/simulate",
        json={
            "definition": json.loads(json.dumps(FLOW_JSON)),
            "mocks": {"extract": {"output": {"rows": 3}, "duration": "2s"}},
            "costTable": {"task": 1.5},
        },
    )
    assert simulated.status_code == 200, simulated.text
    result = simulated.json()
    assert result["succeeded"] is True
    assert [s["stepId"] for s in result["steps"]] == ["extract", "load"]
    assert result["steps"][0]["output"] == {"rows": 3}
    assert result["steps"][0]["duration"] == "2s"
    assert result["criticalPath"] == ["extract", "load"]
    assert result["totalCostCents"] == pytest.approx(3.0)

    # A YAML string definition routes through the condition by the mocked risk.
    routed = await http.post(
        "/api/workflows/simulate",
        json={
            "definition": FLOW_YAML.decode(),
            "inputs": {"amount": 10},
            "mocks": {"score": {"output": {"risk": 0.9}}},
        },
    )
    assert routed.status_code == 200, routed.text
    decision = routed.json()["path"][0]
    assert decision["stepId"] == "decide"
    assert decision["result"] is False
    assert decision["takenSteps"] == ["review"]
    assert decision["skippedSteps"] == ["fast"]

    # An invalid definition is a 400 with one violation per error.
    broken = await http.post("/api/workflows/simulate", json={"definition": INVALID_YAML.decode()})
    problem = assert_problem(broken, 400, "INVALID_DEFINITION")
    assert {v["reason"] for v in problem["violations"]} >= {"UNKNOWN_STEP_REF", "CYCLE"}


async def test_lint_schema_templates_and_builder(gateway: Gateway) -> None:
    http = gateway.http
    untimed = b"name: untimed\nsteps:\n  - id: a\n    type: task\n    handler: echo\n"
    linted = await http.post(
        "/api/workflows/validate", params={"lint": "true"}, content=untimed, headers=YAML
    )
    assert linted.status_code == 200
    codes = [d["code"] for d in linted.json()["diagnostics"]]
    assert "MISSING_TIMEOUT" in codes
    assert linted.json()["valid"] is True
    quiet = await http.post(
        "/api/workflows/validate",
        params={"lint": "true", "disabledRules": "MISSING_TIMEOUT,MISSING_POLICY_LABEL"},
        content=untimed,
        headers=YAML,
    )
    assert "MISSING_TIMEOUT" not in [d["code"] for d in quiet.json()["diagnostics"]]

    schema = await http.get("/api/workflows/schema")
    assert schema.status_code == 200
    document = schema.json()
    assert document["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert "steps" in document["properties"]

    templates = await http.get("/api/workflow-templates")
    assert templates.status_code == 200
    ids = [t["id"] for t in templates.json()["templates"]]
    assert ids == ["approval", "etl", "rag", "routing"]
    made = await http.post(
        "/api/workflow-templates/etl/create", json={"name": "my-etl", "workflowId": "my-etl"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["displayName"] == "my-etl"
    missing = await http.post("/api/workflow-templates/nope/create", json={"name": "x"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM

    built = await http.post(
        "/api/workflow-builder",
        json={"pattern": "routing", "name": "router", "parameters": {"routes": ["a", "b"]}},
    )
    assert built.status_code == 200, built.text
    assert built.json()["definition"]["name"] == "router"
    assert "name: router" in built.json()["sourceText"]
    check = await http.post(
        "/api/workflows/validate", content=built.json()["sourceText"].encode(), headers=YAML
    )
    assert check.json()["valid"] is True


async def test_identity_headers_scope_the_tenant(gateway: Gateway) -> None:
    http = gateway.http
    uncleared = in_acme("ana", "author")
    acme = {**uncleared, "x-maestro-clearance": "internal"}  # the flow is classified internal
    created = await create(gateway, FLOW_YAML, "acme-flow", **acme)
    assert created.json()["tenant"] == "acme"
    assert created.json()["owner"] == "ana"
    assert (await http.get("/api/workflows/acme-flow", headers=acme)).status_code == 200
    # Reads are policy-checked too: below the flow's classification, denied.
    denied = await http.get("/api/workflows/acme-flow", headers=uncleared)
    assert_problem(denied, 403, "POLICY_DENIED")
    assert {r["code"] for r in denied.json()["reasons"]} == {"CLEARANCE_TOO_LOW"}
    other = await http.get("/api/workflows/acme-flow", headers={"x-maestro-tenant": "globex"})
    assert_problem(other, 404, "WORKFLOW_NOT_FOUND")
    # Without headers the default tenant is used, which does not see acme's flow.
    assert_problem(await http.get("/api/workflows/acme-flow"), 404, "WORKFLOW_NOT_FOUND")
    mine = await http.get("/api/workflows", params={"owner": "ana"}, headers=acme)
    assert [w["id"] for w in mine.json()["workflows"]] == ["acme-flow"]
    # A list leaves out what the caller may not read.
    hidden = await http.get("/api/workflows", params={"owner": "ana"}, headers=uncleared)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["workflows"] == []


async def test_every_way_to_make_or_freeze_a_workflow_is_checked(
    gateway: Gateway,
) -> None:
    """Create, create-from-template and clone all ask ``workflow.create``; a
    clone also reads its source and a diff reads its workflow (clearance for
    a classified one); a repeated Idempotency-Key shows the workflow it made
    only to a caller who may read it."""
    http = gateway.http
    author = in_acme("ana", "author", clearance="internal")
    key = {"idempotency-key": "make-acme-flow"}
    first = await create(gateway, FLOW_YAML, "acme-flow", **author, **key)
    viewer = {**author, "x-maestro-subject": "vic", "x-maestro-roles": "viewer"}
    uncleared = {k: v for k, v in author.items() if k != "x-maestro-clearance"}

    # A viewer may read the flow but make no workflow, in any of the three ways.
    assert (await http.get("/api/workflows/acme-flow", headers=viewer)).status_code == 200
    attempts = {
        "create": ("/api/workflows", {"content": FLOW_YAML, "headers": {**YAML, **viewer}}),
        "template": (
            "/api/workflow-templates/etl/create",
            {"json": {"name": "vic-etl"}, "headers": viewer},
        ),
        "clone": ("/api/workflows/acme-flow/clone", {"json": {}, "headers": viewer}),
    }
    for way, (path, request) in attempts.items():
        denied = assert_problem(await http.post(path, **request), 403, "POLICY_DENIED")
        assert [r["code"] for r in denied["reasons"]] == ["ROLE_REQUIRED"], way
        assert denied["appeal"], way

    # An author below the flow's classification may not copy or diff it.
    clone = await http.post("/api/workflows/acme-flow/clone", json={}, headers=uncleared)
    assert {r["code"] for r in assert_problem(clone, 403, "POLICY_DENIED")["reasons"]} == {
        "CLEARANCE_TOO_LOW"
    }
    diff = await http.get(
        "/api/workflows/acme-flow/diff",
        params={"base": "draft", "target": "draft"},
        headers=uncleared,
    )
    assert {r["code"] for r in assert_problem(diff, 403, "POLICY_DENIED")["reasons"]} == {
        "CLEARANCE_TOO_LOW"
    }
    # Nor see it by repeating the key that created it.
    replay = await http.post(
        "/api/workflows", content=FLOW_YAML, headers={**YAML, **uncleared, **key}
    )
    assert {r["code"] for r in assert_problem(replay, 403, "POLICY_DENIED")["reasons"]} == {
        "CLEARANCE_TOO_LOW"
    }
    again = await http.post("/api/workflows", content=FLOW_YAML, headers={**YAML, **author, **key})
    assert again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    listed = await http.get("/api/workflows", headers=author)
    assert [w["id"] for w in listed.json()["workflows"]] == ["acme-flow"]

    # Freezing is an update: a viewer may not, even when it would change nothing.
    for frozen in (True, False):
        refused = await http.post(
            "/api/workflows/acme-flow/freeze", json={"frozen": frozen}, headers=viewer
        )
        assert_problem(refused, 403, "POLICY_DENIED")
    frozen_by_author = await http.post(
        "/api/workflows/acme-flow/freeze", json={"reason": "release"}, headers=author
    )
    assert frozen_by_author.json()["frozen"] is True


async def test_a_published_workflow_is_never_declassified(gateway: Gateway) -> None:
    """Reads are checked against the draft's labels, so a draft may not go
    below the classification its workflow was published at."""
    http = gateway.http
    admin = in_acme("root", "admin", clearance="confidential")
    await create(gateway, FLOW_YAML, "classified", **admin)  # internal
    published = await http.post(
        "/api/workflows/classified/publish", json={"bump": "major"}, headers=admin
    )
    assert published.status_code == 201, published.text
    lowered = FLOW_YAML.replace(b"classification: internal", b"classification: public")
    refused = await http.put(
        "/api/workflows/classified", content=lowered, headers={**YAML, **admin}
    )
    body = assert_problem(refused, 400, "CLASSIFICATION_LOWERED")
    assert "clone" in body["detail"]
    unlabelled = FLOW_YAML.replace(b"labels: {classification: internal}\n", b"")
    refused = await http.put(
        "/api/workflows/classified", content=unlabelled, headers={**YAML, **admin}
    )
    assert_problem(refused, 400, "CLASSIFICATION_LOWERED")
    raised = FLOW_YAML.replace(b"classification: internal", b"classification: confidential")
    updated = await http.put("/api/workflows/classified", content=raised, headers={**YAML, **admin})
    assert updated.status_code == 200, updated.text
    viewer = {**admin, "x-maestro-roles": "viewer", "x-maestro-clearance": "internal"}
    assert_problem(
        await http.get("/api/workflows/classified/versions/latest", headers=viewer),
        403,
        "POLICY_DENIED",
    )

    # A flag that makes reads sensitive stays too; no classification is public.
    flagged = FLOW_YAML.replace(
        b"labels: {classification: internal}", b'labels: {classification: public, pii: "true"}'
    )
    admin = {**admin, "x-maestro-purpose": "operations", "x-maestro-legal-basis": "contract"}
    await create(gateway, flagged, "flagged", **admin)
    published = await http.post(
        "/api/workflows/flagged/publish", json={"bump": "major"}, headers=admin
    )
    assert published.status_code == 201, published.text
    unflagged = flagged.replace(b', pii: "true"', b"")
    refused = await http.put("/api/workflows/flagged", content=unflagged, headers={**YAML, **admin})
    assert_problem(refused, 400, "CLASSIFICATION_LOWERED")
    unclassified = flagged.replace(b"classification: public, ", b"")
    kept = await http.put("/api/workflows/flagged", content=unclassified, headers={**YAML, **admin})
    assert kept.status_code == 200, kept.text


async def test_request_errors_are_problems(gateway: Gateway) -> None:
    http = gateway.http

    # Malformed JSON definition: 400 SOURCE_SYNTAX_ERROR at its line and column.
    bad_json = await http.post(
        "/api/workflows", content=b'{"name": "x",\n "steps": [}', headers=JSON
    )
    body = assert_problem(bad_json, 400, "SOURCE_SYNTAX_ERROR")
    assert body["code"] == "INVALID_ARGUMENT"
    assert body["metadata"]["line"] == "2"
    assert body["metadata"]["column"] == "12"

    # Malformed YAML likewise.
    bad_yaml = await http.post(
        "/api/workflows", content=b"name: x\nsteps:\n  - id: a\n   type: task\n", headers=YAML
    )
    assert assert_problem(bad_yaml, 400, "SOURCE_SYNTAX_ERROR")["metadata"]["line"] == "4"

    # An invalid definition: every error diagnostic as a violation.
    invalid = await http.post("/api/workflows", content=INVALID_YAML, headers=YAML)
    body = assert_problem(invalid, 400, "INVALID_DEFINITION")
    assert ("UNKNOWN_STEP_REF", "/steps/2/needs/0") in {
        (v["reason"], v["field"]) for v in body["violations"]
    }

    # Malformed JSON in a request body: 400 with line and column.
    broken = await http.post(
        "/api/workflows/x-flow/publish", content=b'{"bump":\n  "minor",}', headers=JSON
    )
    body = assert_problem(broken, 400, "INVALID_ARGUMENT")
    assert body["metadata"] == {"line": "2", "column": "11"}
    assert body["violations"][0]["field"] == "body"

    # Wrong types and an unknown field: one violation each.
    wrong = await http.post(
        "/api/workflows/x-flow/publish", json={"bump": 3, "changelog": ["a"], "force": True}
    )
    body = assert_problem(wrong, 400, "INVALID_ARGUMENT")
    by_field = {v["field"]: v["reason"] for v in body["violations"]}
    assert by_field == {
        "body.bump": "LITERAL_ERROR",
        "body.changelog": "STRING_TYPE",
        "body.force": "EXTRA_FORBIDDEN",
    }
    unknown = await http.post(
        "/api/workflows/x-flow/promote", json={"alias": "stable", "version": "1.0.0", "x": 1}
    )
    assert [v["field"] for v in assert_problem(unknown, 400, "INVALID_ARGUMENT")["violations"]] == [
        "body.x"
    ]
    not_bool = await http.post("/api/workflows/x-flow/freeze", json={"frozen": "yes"})
    assert assert_problem(not_bool, 400, "INVALID_ARGUMENT")["violations"][0]["field"] == (
        "body.frozen"
    )
    bad_query = await http.get("/api/workflows", params={"pageSize": "many"})
    assert assert_problem(bad_query, 400, "INVALID_ARGUMENT")["violations"][0]["field"] == (
        "query.pageSize"
    )
    bad_duration = await http.post(
        "/api/workflows/simulate",
        json={"definition": FLOW_JSON, "mocks": {"extract": {"duration": "soon"}}},
    )
    body = assert_problem(bad_duration, 400, "INVALID_ARGUMENT")
    assert body["violations"][0]["field"] == "body.mocks.extract.duration"

    # Unknown workflow: 404 WORKFLOW_NOT_FOUND on every route that names one.
    for response in (
        await http.get("/api/workflows/no-such-flow"),
        await http.put("/api/workflows/no-such-flow", content=FLOW_YAML, headers=YAML),
        await http.delete("/api/workflows/no-such-flow"),
        await http.post("/api/workflows/no-such-flow/publish", json={}),
        await http.get("/api/workflows/no-such-flow/versions"),
    ):
        body = assert_problem(response, 404, "WORKFLOW_NOT_FOUND")
        assert body["metadata"]["name"] == "workflows/no-such-flow"

    # Empty body, wrong media type, unknown route.
    assert_problem(
        await http.post("/api/workflows", content=b"", headers=YAML), 400, "INVALID_ARGUMENT"
    )
    png = await http.post(
        "/api/workflows", content=FLOW_YAML, headers={"content-type": "image/png"}
    )
    assert_problem(png, 415, "INVALID_ARGUMENT")
    assert_problem(await http.get("/api/nothing-here"), 404, "ROUTE_NOT_FOUND")


async def test_body_size_cap(gateway: Gateway) -> None:
    http = gateway.http
    limit = gateway.server.settings.max_body_bytes
    assert limit == 1024 * 1024

    # Declared too large: refused before the body is read.
    declared = await http.post("/api/workflows", content=b"#" * (limit + 1), headers=YAML)
    body = assert_problem(declared, 413, "PAYLOAD_TOO_LARGE")
    assert body["metadata"] == {"limit_bytes": str(limit)}

    # Streamed without a Content-Length: refused once the count passes the cap.
    async def chunks() -> Any:
        for _ in range(20):
            yield b"#" * 100_000

    streamed = await http.post("/api/workflows", content=chunks(), headers=YAML)
    assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE")

    # JSON request bodies are capped too; the connection stays usable.
    big = await http.post(
        "/api/workflows/simulate",
        content=json.dumps({"definition": "x" * (limit + 10)}).encode(),
        headers=JSON,
    )
    assert_problem(big, 413, "PAYLOAD_TOO_LARGE")
    assert (await http.get("/healthz")).status_code == 200


async def test_small_body_cap_from_settings(gateway: Gateway) -> None:
    small = await create_gateway(gateway_settings(gateway.mesh, max_body_bytes=64))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{small.port}") as http:
            refused = await http.post("/api/workflows/validate", content=FLOW_YAML, headers=YAML)
            assert_problem(refused, 413, "PAYLOAD_TOO_LARGE")
            tiny = b"name: t\nsteps: [{id: a, type: task}]\n"
            assert len(tiny) <= 64
            accepted = await http.post("/api/workflows/validate", content=tiny, headers=YAML)
            assert accepted.status_code == 200
    finally:
        await small.stop()


async def test_openapi_and_docs(gateway: Gateway) -> None:
    http = gateway.http
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/api/workflows", "post"),
        ("/api/workflows", "get"),
        ("/api/workflows/{id}", "get"),
        ("/api/workflows/{id}", "put"),
        ("/api/workflows/{id}", "delete"),
        ("/api/workflows/{id}/publish", "post"),
        ("/api/workflows/{id}/clone", "post"),
        ("/api/workflows/{id}/versions", "get"),
        ("/api/workflows/{id}/versions/{version}", "get"),
        ("/api/workflows/{id}/diff", "get"),
        ("/api/workflows/{id}/promote", "post"),
        ("/api/workflows/{id}/freeze", "post"),
        ("/api/workflows/validate", "post"),
        ("/api/workflows/simulate", "post"),
        ("/api/workflows/schema", "get"),
        ("/api/workflow-templates", "get"),
        ("/api/workflow-templates/{id}/create", "post"),
        ("/api/workflow-builder", "post"),
    ]:
        assert method in paths[path], (path, method)
    create_op = paths["/api/workflows"]["post"]
    assert set(create_op["requestBody"]["content"]) == {"application/json", "application/yaml"}
    assert create_op["responses"]["400"]["content"][PROBLEM]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    publish_op = paths["/api/workflows/{id}/publish"]["post"]
    assert "422" not in publish_op["responses"]
    publish_schema = publish_op["requestBody"]["content"]["application/json"]["schema"]
    assert publish_schema == {"$ref": "#/components/schemas/PublishBody"}
    assert spec["components"]["schemas"]["PublishBody"]["additionalProperties"] is False
    assert "reason" in spec["components"]["schemas"]["Problem"]["properties"]
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    # The page's assets are served locally (works with no network).
    assert "/docs/static/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    bundle = await http.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000


async def test_one_trace_per_request_across_the_grpc_calls(gateway: Gateway) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = await create_gateway(gateway_settings(gateway.mesh), tracer_provider=provider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{traced.port}") as http:
            response = await http.get(
                "/api/workflows/no-such-flow",
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
        assert response.status_code == 404
    finally:
        await traced.stop()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    server = spans["GET /api/workflows/{id}"]
    client = spans["/maestro.registry.v1.RegistryService/GetWorkflow"]
    assert server.kind == SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == trace_id
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 404
