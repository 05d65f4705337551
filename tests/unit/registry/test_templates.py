"""Templates and the builder: documents built from parameters, checked by the
real compiler."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from maestro.common.v1 import diagnostic_pb2
from maestro.runtime.errors import InvalidArgumentError
from maestro.services.registry import templates
from maestro.services.registry.templates import Pattern
from tests.unit.registry.support import Harness


def _ids(document: dict[str, Any]) -> list[str]:
    return [step["id"] for step in document["steps"]]


def test_every_pattern_has_one_template_sorted_by_id() -> None:
    assert [t.template_id for t in templates.TEMPLATES] == sorted(
        t.template_id for t in templates.TEMPLATES
    )
    assert {t.pattern for t in templates.TEMPLATES} == set(Pattern)
    assert templates.find_template("rag") is not None
    assert templates.find_template("nope") is None


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (["solo"], ["handle_solo"]),
        (["a", "b"], ["check_a", "handle_a", "handle_b"]),
        (["a", "b-2", "c"], ["check_a", "handle_a", "check_b_2", "handle_b_2", "handle_c"]),
    ],
)
def test_routing_chains_one_condition_per_route_but_the_last(
    routes: list[str], expected: list[str]
) -> None:
    document = templates.build(Pattern.ROUTING, "router", {"routes": routes})
    assert _ids(document) == expected
    steps = {s["id"]: s for s in document["steps"]}
    if len(routes) > 1:
        first = steps["check_a"]["condition"]
        assert first["expression"] == 'inputs.route == "a"'
        assert first["thenSteps"] == ["handle_a"]
        # The last route is the else branch of the last condition.
        last_check = expected[-3]
        assert steps[last_check]["condition"]["elseSteps"] == [expected[-1]]
        assert steps[expected[-1]]["needs"] == [last_check]
    assert document["inputSchema"]["properties"]["route"]["enum"] == routes


def test_etl_chains_transforms_and_adds_a_schedule() -> None:
    document = templates.build(
        Pattern.ETL, "nightly", {"transforms": ["clean", "de-dupe"], "schedule": "0 2 * * *"}
    )
    assert _ids(document) == ["extract", "transform_clean", "transform_de_dupe", "load"]
    assert document["steps"][-1]["input"] == {"records": "steps.transform_de_dupe.output.records"}
    assert document["triggers"] == [{"type": "schedule", "cron": "0 2 * * *", "timezone": "UTC"}]


def test_struct_numbers_are_accepted_as_integers() -> None:
    document = templates.build(Pattern.RAG, "ask", {"topK": 3.0})
    assert document["steps"][0]["config"]["topK"] == 3


@pytest.mark.parametrize(
    ("pattern", "parameters", "fields"),
    [
        (Pattern.ROUTING, {"routes": []}, {"parameters.routes"}),
        (Pattern.ROUTING, {"routes": ["a", "a"]}, {"parameters.routes"}),
        (Pattern.ROUTING, {"routes": ["Bad Route"]}, {"parameters.routes"}),
        (Pattern.ROUTING, {"field": "a.b", "colour": 1}, {"parameters.field", "parameters.colour"}),
        (Pattern.RAG, {"topK": 2.5}, {"parameters.topK"}),
        (Pattern.RAG, {"topK": 0}, {"parameters.topK"}),
        (Pattern.ETL, {"schedule": "hourly"}, {"parameters.schedule"}),
        (
            Pattern.APPROVAL,
            {"dueSeconds": True, "action": ""},
            {"parameters.dueSeconds", "parameters.action"},
        ),
    ],
)
def test_bad_parameters_name_every_problem(
    pattern: Pattern, parameters: dict[str, Any], fields: set[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        templates.build(pattern, "x", parameters)
    assert {v.field for v in caught.value.field_violations} == fields


def test_yaml_has_a_header_no_anchors_and_reads_back() -> None:
    document = templates.build(Pattern.ROUTING, "router", {"routes": ["a", "b", "c"]})
    content = templates.to_yaml(document, comment="Built for a test.")
    assert content.startswith(b"# Built for a test.\n")
    assert b"&id" not in content and b"*id" not in content
    assert yaml.safe_load(content) == document


@pytest.mark.parametrize("pattern", list(Pattern))
async def test_every_pattern_builds_a_valid_definition(harness: Harness, pattern: Pattern) -> None:
    built = await harness.registry.build_workflow(pattern, f"my-{pattern.value}", {})
    errors = [d for d in built.diagnostics if d.severity == diagnostic_pb2.SEVERITY_ERROR]
    assert errors == []
    assert built.definition.name == f"my-{pattern.value}"
    assert len(built.definition.steps) >= 3


async def test_builder_reports_problems_as_diagnostics(harness: Harness) -> None:
    built = await harness.registry.build_workflow(Pattern.RAG, "Not A Name", {})
    assert "INVALID_NAME" in {d.code for d in built.diagnostics}
    assert built.source.startswith(b"# Built from the rag pattern.")


async def test_listed_templates_carry_decoded_definitions(harness: Harness) -> None:
    page = await harness.registry.list_templates(page_size=2)
    assert [t.name for t in page.items] == ["templates/approval", "templates/etl"]
    assert page.items[0].definition.steps[0].human.assignees == ["role:approver"]
    rest = await harness.registry.list_templates(page_size=2, page_token=page.next_page_token)
    assert [t.name for t in rest.items] == ["templates/rag", "templates/routing"]
    assert rest.next_page_token == ""
