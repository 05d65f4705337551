"""Registry domain rules over SQLite and a real compiler: names, validation
errors, defaults, no-op changes and renaming on clone."""

from __future__ import annotations

import json

import pytest

from maestro.common.v1 import source_pb2
from maestro.runtime.context import Principal
from maestro.runtime.errors import (
    AbortedError,
    InvalidArgumentError,
    InvalidDefinitionError,
    NotFoundError,
)
from maestro.services.registry.service import (
    Source,
    parse_version_name,
    parse_workflow_name,
)
from tests.unit.registry.support import ANA, Harness, document, source

WF = "workflows/orders-flow"


@pytest.mark.parametrize(
    "name", ["orders-flow", "workflows/", "workflows/abc", "workflows/Orders", "flows/orders-x"]
)
def test_bad_workflow_names_are_invalid(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_workflow_name(name)
    assert caught.value.field_violations[0].field == "name"


def test_version_names() -> None:
    assert parse_version_name("workflows/orders-flow/versions/stable") == ("orders-flow", "stable")
    for bad in ("workflows/orders-flow", "workflows/orders-flow/versions/", "workflows/x/v/1"):
        with pytest.raises(InvalidArgumentError):
            parse_version_name(bad)


async def test_anonymous_callers_use_the_default_tenant(harness: Harness) -> None:
    row = await harness.registry.create_workflow(Principal(), source())
    assert (row.tenant, row.owner) == ("default", "anonymous")
    with pytest.raises(NotFoundError):
        await harness.registry.get_workflow(ANA, f"workflows/{row.workflow_id}")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"workflow_id": "abc"}, "workflow_id"),
        ({"workflow_id": "Upper-Case"}, "workflow_id"),
        ({"request_id": "r" * 129}, "request_id"),
    ],
)
async def test_bad_create_fields_are_invalid(
    harness: Harness, kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await harness.registry.create_workflow(ANA, source(), **kwargs)
    assert [v.field for v in caught.value.field_violations] == [field]


async def test_empty_source_is_invalid(harness: Harness) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await harness.registry.create_workflow(ANA, Source(b""))
    assert caught.value.field_violations[0].field == "source.content"


async def test_syntax_errors_carry_their_position(harness: Harness) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await harness.registry.create_workflow(ANA, Source(b"name: x\nsteps: [\n"))
    assert caught.value.reason == "SOURCE_SYNTAX_ERROR"
    assert int(caught.value.metadata["line"]) >= 2


async def test_invalid_definitions_list_every_error(harness: Harness) -> None:
    content = (
        b"name: x\nsteps:\n"
        b"  - {id: a, type: task, needs: [b]}\n"
        b"  - {id: b, type: task, needs: [a]}\n"
    )
    with pytest.raises(InvalidDefinitionError) as caught:
        await harness.registry.create_workflow(ANA, Source(content))
    assert "CYCLE" in {v.reason for v in caught.value.field_violations}
    assert caught.value.metadata["errors"] == str(len(caught.value.field_violations))
    assert (await harness.registry.list_workflows(ANA)).items == []


async def test_resubmitting_the_draft_changes_nothing_but_etags_still_count(
    harness: Harness,
) -> None:
    created = await harness.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    changed = await harness.registry.update_workflow(
        ANA, WF, source(description="new"), etag=created.etag
    )
    same = await harness.registry.update_workflow(
        ANA, WF, source(description="new"), etag=changed.etag
    )
    assert (same.etag, same.update_time) == (changed.etag, changed.update_time)
    with pytest.raises(AbortedError) as caught:
        await harness.registry.update_workflow(
            ANA, WF, source(description="new"), etag=created.etag
        )
    assert caught.value.metadata["current_etag"] == changed.etag


async def test_freeze_and_promote_change_nothing_when_already_so(harness: Harness) -> None:
    await harness.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    await harness.registry.publish_workflow(ANA, WF)
    frozen = await harness.registry.freeze_workflow(ANA, WF, frozen=True, reason="release")
    assert (
        await harness.registry.freeze_workflow(ANA, WF, frozen=True, reason="release")
    ).etag == (frozen.etag)
    promoted = await harness.registry.promote_workflow_version(ANA, f"{WF}/versions/1.0.0", "prod")
    again = await harness.registry.promote_workflow_version(ANA, f"{WF}/versions/latest", "prod")
    assert again.etag == promoted.etag != frozen.etag
    assert dict(again.aliases) == {"prod": "1.0.0"}


async def test_clone_renames_json_sources_as_json(harness: Harness) -> None:
    content = json.dumps(
        {"name": "a" * 63, "steps": [{"id": "only", "type": "task", "handler": "echo"}]}
    ).encode()
    await harness.registry.create_workflow(
        ANA, Source(content, source_pb2.SOURCE_FORMAT_JSON), workflow_id="long-name"
    )
    clone = await harness.registry.clone_workflow(ANA, "workflows/long-name")
    assert clone.display_name == "a" * 58 + "-copy"
    assert json.loads(clone.draft_source)["name"] == clone.display_name
    assert clone.draft_format == source_pb2.SOURCE_FORMAT_JSON


async def test_clone_keeps_yaml_bytes_when_the_name_is_unchanged(harness: Harness) -> None:
    await harness.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    clone = await harness.registry.clone_workflow(ANA, WF, new_definition_name="orders")
    assert clone.draft_source == document()


async def test_unknown_template_is_not_found(harness: Harness) -> None:
    for name in ("templates/unknown", "routing", "workflows/routing"):
        with pytest.raises(NotFoundError) as caught:
            await harness.registry.create_workflow_from_template(ANA, name)
        assert caught.value.metadata["name"] == name
        assert caught.value.reason == "TEMPLATE_NOT_FOUND"
