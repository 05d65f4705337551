"""The registry's domain over its real store, once on SQLite and once on
PostgreSQL, with a real compiler server: versioning, concurrency, listing,
idempotency, aliases, clone, templates and tenant isolation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maestro.common.v1 import diff_pb2
from maestro.runtime.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from maestro.services.registry.service import Source
from maestro.services.registry.store import WorkflowRow
from maestro.services.registry.templates import TEMPLATES, Pattern
from tests.unit.registry.support import ANA, BOB, EVE, Harness, source

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

WF = "workflows/orders-flow"


async def _create(h: Harness, workflow_id: str = "orders-flow", **kwargs: Any) -> WorkflowRow:
    return await h.registry.create_workflow(ANA, source(**kwargs), workflow_id=workflow_id)


# -- create, read, tenants ------------------------------------------------------


async def test_create_assigns_id_owner_tenant_and_first_draft(harness: Harness) -> None:
    row = await harness.registry.create_workflow(ANA, source(tags=("orders", "etl")))
    assert row.workflow_id.startswith("wf-")
    assert (row.tenant, row.owner, row.state) == ("acme", "ana", "DRAFT")
    assert row.draft_version == "0.1.0-draft"
    assert (row.display_name, row.tags) == ("orders", ("etl", "orders"))
    assert len(row.draft_digest) == 64
    got = await harness.registry.get_workflow(ANA, f"workflows/{row.workflow_id}")
    assert got.etag == row.etag
    assert got.latest is None


async def test_create_is_idempotent_on_request_id(harness: Harness) -> None:
    first = await harness.registry.create_workflow(ANA, source(), request_id="req-1")
    again = await harness.registry.create_workflow(ANA, source(), request_id="req-1")
    assert again.workflow_id == first.workflow_id
    listed = await harness.registry.list_workflows(ANA)
    assert [r.workflow_id for r in listed.items] == [first.workflow_id]


async def test_concurrent_creates_with_one_request_id_make_one_workflow(harness: Harness) -> None:
    results = await asyncio.gather(
        *(harness.registry.create_workflow(ANA, source(), request_id="req-2") for _ in range(4))
    )
    assert len({r.workflow_id for r in results}) == 1
    assert len((await harness.registry.list_workflows(ANA)).items) == 1


async def test_taken_workflow_id_is_already_exists(harness: Harness) -> None:
    await _create(harness)
    with pytest.raises(AlreadyExistsError) as caught:
        await _create(harness)
    assert caught.value.metadata["name"] == WF


async def test_another_tenant_gets_not_found(harness: Harness) -> None:
    await _create(harness)
    r = harness.registry
    calls = [
        r.get_workflow(EVE, WF),
        r.update_workflow(EVE, WF, source(description="taken over")),
        r.delete_workflow(EVE, WF),
        r.publish_workflow(EVE, WF),
        r.freeze_workflow(EVE, WF, frozen=True),
        r.clone_workflow(EVE, WF),
        r.list_workflow_versions(EVE, WF),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as caught:
            await call
        assert caught.value.reason == "WORKFLOW_NOT_FOUND"
    assert (await r.list_workflows(EVE)).items == []
    # The owner's tenant still sees it unchanged.
    assert (await r.get_workflow(ANA, WF)).description == "Moves orders along."
    # The same id is free in another tenant.
    other = await r.create_workflow(EVE, source(), workflow_id="orders-flow")
    assert other.tenant == "globex"


# -- drafts and concurrency -----------------------------------------------------


async def test_update_replaces_the_draft_and_changes_the_etag(harness: Harness) -> None:
    created = await _create(harness)
    updated = await harness.registry.update_workflow(
        BOB, WF, source(description="Now with notes.", tags=("b", "a")), etag=created.etag
    )
    assert updated.etag != created.etag
    assert updated.description == "Now with notes."
    assert updated.tags == ("a", "b")
    assert updated.owner == "ana"
    assert updated.draft_version == "0.1.0-draft"
    assert updated.update_time > created.update_time


async def test_stale_etag_is_aborted_with_the_current_etag(harness: Harness) -> None:
    created = await _create(harness)
    current = await harness.registry.update_workflow(ANA, WF, source(description="v2"))
    with pytest.raises(AbortedError) as caught:
        await harness.registry.update_workflow(ANA, WF, source(description="v3"), etag=created.etag)
    assert caught.value.reason == "ETAG_MISMATCH"
    assert caught.value.metadata["current_etag"] == current.etag
    assert (await harness.registry.get_workflow(ANA, WF)).description == "v2"


async def test_concurrent_updates_with_one_etag_exactly_one_wins(harness: Harness) -> None:
    created = await _create(harness)
    results = await asyncio.gather(
        harness.registry.update_workflow(ANA, WF, source(description="left"), etag=created.etag),
        harness.registry.update_workflow(ANA, WF, source(description="right"), etag=created.etag),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, WorkflowRow)]
    losers = [r for r in results if isinstance(r, AbortedError)]
    assert len(winners) == 1, results
    assert len(losers) == 1, results
    final = await harness.registry.get_workflow(ANA, WF)
    assert final.description == winners[0].description
    assert losers[0].metadata["current_etag"] == final.etag


async def test_invalid_update_is_refused_and_keeps_the_draft(harness: Harness) -> None:
    created = await _create(harness)
    broken = b"name: orders\nsteps:\n  - id: a\n    type: task\n    needs: [ghost]\n"
    with pytest.raises(InvalidArgumentError) as caught:
        await harness.registry.update_workflow(ANA, WF, Source(broken))
    assert caught.value.reason == "INVALID_DEFINITION"
    assert "UNKNOWN_STEP_REF" in {v.reason for v in caught.value.field_violations}
    assert (await harness.registry.get_workflow(ANA, WF)).etag == created.etag


async def test_soft_delete_hides_from_list_and_get(harness: Harness) -> None:
    created = await _create(harness)
    await _create(harness, "kept-flow")
    deleted = await harness.registry.delete_workflow(ANA, WF, etag=created.etag)
    assert deleted.delete_time is not None
    listed = await harness.registry.list_workflows(ANA)
    assert [r.workflow_id for r in listed.items] == ["kept-flow"]
    with pytest.raises(NotFoundError):
        await harness.registry.get_workflow(ANA, WF)
    shown = await harness.registry.get_workflow(ANA, WF, show_deleted=True)
    assert shown.deleted
    with_deleted = await harness.registry.list_workflows(ANA, show_deleted=True)
    assert {r.workflow_id for r in with_deleted.items} == {"kept-flow", "orders-flow"}
    # Deleting again is a no-op (a retried delete succeeds); changing it is not.
    again = await harness.registry.delete_workflow(ANA, WF)
    assert again.etag == deleted.etag
    with pytest.raises(NotFoundError):
        await harness.registry.update_workflow(ANA, WF, source(description="zombie"))


# -- listing --------------------------------------------------------------------


async def test_pages_are_stable_while_workflows_are_inserted(harness: Harness) -> None:
    originals = [(await _create(harness, f"flow-{i:02d}")).workflow_id for i in range(7)]
    seen: list[str] = []
    page = await harness.registry.list_workflows(ANA, page_size=3)
    seen += [r.workflow_id for r in page.items]
    for i in range(3):  # inserted between pages: newer, so before the cursor
        await _create(harness, f"late-{i:02d}")
    while page.next_page_token:
        page = await harness.registry.list_workflows(
            ANA, page_size=3, page_token=page.next_page_token
        )
        seen += [r.workflow_id for r in page.items]
    assert seen == list(reversed(originals))  # newest first, no duplicate, no gap


async def test_filters_by_owner_tag_state_and_update_time(harness: Harness) -> None:
    r = harness.registry
    await r.create_workflow(ANA, source(tags=("etl",)), workflow_id="ana-etl")
    await r.create_workflow(BOB, source(tags=("etl", "rag")), workflow_id="bob-etl")
    await r.create_workflow(BOB, source(tags=("rag",)), workflow_id="bob-rag")
    await r.publish_workflow(BOB, "workflows/bob-rag")

    async def ids(text: str) -> set[str]:
        return {row.workflow_id for row in (await r.list_workflows(ANA, filter=text)).items}

    assert await ids('owner = "bob"') == {"bob-etl", "bob-rag"}
    assert await ids('tag = "etl"') == {"ana-etl", "bob-etl"}
    assert await ids('tag = "etl" AND tag = "rag"') == {"bob-etl"}
    assert await ids("state = PUBLISHED") == {"bob-rag"}
    assert await ids('state = "DRAFT" AND owner = "bob"') == {"bob-etl"}
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(f'update_time > "{past}"') == {"ana-etl", "bob-etl", "bob-rag"}
    assert await ids(f'update_time > "{future}"') == set()
    with pytest.raises(InvalidArgumentError) as bad:
        await r.list_workflows(ANA, filter='color = "red"')
    assert bad.value.reason == "INVALID_FILTER"


async def test_page_tokens_are_checked(harness: Harness) -> None:
    for i in range(3):
        await _create(harness, f"flow-{i:02d}")
    page = await harness.registry.list_workflows(ANA, page_size=1, filter='owner = "ana"')
    assert page.next_page_token
    for token, query in ((page.next_page_token, 'owner = "bob"'), ("not-a-token", "")):
        with pytest.raises(InvalidArgumentError) as caught:
            await harness.registry.list_workflows(ANA, page_size=1, page_token=token, filter=query)
        assert caught.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgumentError) as caught:
        await harness.registry.list_workflows(EVE, page_size=1, page_token=page.next_page_token)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


# -- publishing -----------------------------------------------------------------


async def test_first_publish_is_1_0_0_and_stores_plan_and_provenance(harness: Harness) -> None:
    await _create(harness)
    published = await harness.registry.publish_workflow(BOB, WF, changelog="first")
    version = published.version
    assert version.version == "1.0.0"
    assert (version.published_by, version.changelog, version.seq) == ("bob", "first", 1)
    assert version.plan and version.definition and version.diff_from_previous is None
    assert version.digest == published.workflow.draft_digest
    workflow = published.workflow
    assert (workflow.state, workflow.latest_version) == ("PUBLISHED", "1.0.0")
    assert workflow.draft_version == "1.0.1-draft"
    assert workflow.latest is not None and workflow.latest.version == "1.0.0"


async def test_explicit_first_version_is_taken_as_given(harness: Harness) -> None:
    await _create(harness)
    published = await harness.registry.publish_workflow(ANA, WF, version="0.3.0")
    assert published.version.version == "0.3.0"


async def test_published_version_does_not_change_with_the_draft(harness: Harness) -> None:
    await _create(harness)
    first = (await harness.registry.publish_workflow(ANA, WF)).version
    await harness.registry.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify")))
    again = await harness.registry.get_workflow_version(ANA, f"{WF}/versions/1.0.0")
    assert (again.source, again.definition, again.plan) == (
        first.source,
        first.definition,
        first.plan,
    )
    assert b"notify" not in again.source


async def test_breaking_change_requires_a_major_bump(harness: Harness) -> None:
    await _create(harness)
    await harness.registry.publish_workflow(ANA, WF)
    updated = await harness.registry.update_workflow(ANA, WF, source(required_inputs=("customer",)))
    assert updated.draft_version == "2.0.0-draft"
    for kwargs in ({"bump": diff_pb2.SEMVER_BUMP_MINOR}, {"version": "1.1.0"}):
        with pytest.raises(FailedPreconditionError) as caught:
            await harness.registry.publish_workflow(ANA, WF, **kwargs)
        assert caught.value.reason == "SEMVER_BUMP_REQUIRED"
        assert caught.value.metadata["required_bump"] == "SEMVER_BUMP_MAJOR"
    published = await harness.registry.publish_workflow(ANA, WF)
    assert published.version.version == "2.0.0"
    assert published.version.diff_from_previous is not None
    diff = diff_pb2.WorkflowDiff.FromString(published.version.diff_from_previous)
    assert diff.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert [b.code for b in diff.breaking_changes] == ["INPUT_SCHEMA_NARROWED"]


async def test_compatible_change_needs_minor_and_explicit_versions_must_increase(
    harness: Harness,
) -> None:
    await _create(harness)
    await harness.registry.publish_workflow(ANA, WF, version="1.2.0")
    await harness.registry.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify")))
    for kwargs in (
        {"bump": diff_pb2.SEMVER_BUMP_PATCH},
        {"version": "1.2.1"},
        {"version": "1.2.0"},
        {"version": "1.1.9"},
    ):
        with pytest.raises(FailedPreconditionError) as caught:
            await harness.registry.publish_workflow(ANA, WF, **kwargs)
        assert caught.value.reason == "SEMVER_BUMP_REQUIRED", kwargs
        assert caught.value.metadata["required_bump"] == "SEMVER_BUMP_MINOR"
    with pytest.raises(InvalidArgumentError):
        await harness.registry.publish_workflow(ANA, WF, version="1.3")
    published = await harness.registry.publish_workflow(ANA, WF, bump=diff_pb2.SEMVER_BUMP_MAJOR)
    assert published.version.version == "2.0.0"
    await harness.registry.update_workflow(
        ANA, WF, source(steps=("fetch", "store", "notify"), description="Only words changed.")
    )
    assert (await harness.registry.publish_workflow(ANA, WF)).version.version == "2.0.1"


async def test_publish_is_idempotent_on_request_id(harness: Harness) -> None:
    await _create(harness)
    first = await harness.registry.publish_workflow(ANA, WF, request_id="pub-1")
    again = await harness.registry.publish_workflow(ANA, WF, request_id="pub-1")
    assert again.version.version == first.version.version == "1.0.0"
    versions = await harness.registry.list_workflow_versions(ANA, WF)
    assert [v.version for v in versions.items] == ["1.0.0"]
    with pytest.raises(InvalidArgumentError):  # a request id belongs to one operation
        await harness.registry.create_workflow(ANA, source(), request_id="pub-1")


async def test_frozen_workflow_refuses_publish_until_unfrozen(harness: Harness) -> None:
    await _create(harness)
    frozen = await harness.registry.freeze_workflow(ANA, WF, frozen=True, reason="audit")
    assert (frozen.frozen, frozen.frozen_reason) == (True, "audit")
    with pytest.raises(FailedPreconditionError) as caught:
        await harness.registry.publish_workflow(ANA, WF)
    assert caught.value.reason == "WORKFLOW_FROZEN"
    assert (await harness.registry.list_workflow_versions(ANA, WF)).items == []
    thawed = await harness.registry.freeze_workflow(ANA, WF, frozen=False)
    assert (thawed.frozen, thawed.frozen_reason) == (False, "")
    assert (await harness.registry.publish_workflow(ANA, WF)).version.version == "1.0.0"


async def test_concurrent_publishes_make_distinct_versions(harness: Harness) -> None:
    await _create(harness)
    results = await asyncio.gather(
        *(harness.registry.publish_workflow(ANA, WF) for _ in range(3)),
        return_exceptions=True,
    )
    versions = sorted(r.version.version for r in results if not isinstance(r, BaseException))
    assert versions == ["1.0.0", "1.0.1", "1.0.2"], results
    listed = await harness.registry.list_workflow_versions(ANA, WF)
    assert [v.seq for v in listed.items] == [3, 2, 1]


# -- versions, aliases, diff ----------------------------------------------------


async def _three_versions(h: Harness) -> None:
    await _create(h)
    await h.registry.publish_workflow(ANA, WF)
    await h.registry.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify")))
    await h.registry.publish_workflow(ANA, WF)
    await h.registry.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify", "log")))
    await h.registry.publish_workflow(ANA, WF)


async def test_versions_are_listed_newest_first_without_content(harness: Harness) -> None:
    await _three_versions(harness)
    first = await harness.registry.list_workflow_versions(ANA, WF, page_size=2)
    assert [v.version for v in first.items] == ["1.2.0", "1.1.0"]
    assert all(not v.has_content and not v.plan and not v.definition for v in first.items)
    assert first.items[0].diff_from_previous is not None
    rest = await harness.registry.list_workflow_versions(
        ANA, WF, page_size=2, page_token=first.next_page_token
    )
    assert [v.version for v in rest.items] == ["1.0.0"]
    assert rest.next_page_token == ""
    assert rest.items[0].diff_from_previous is None


async def test_aliases_promote_and_resolve(harness: Harness) -> None:
    await _three_versions(harness)
    r = harness.registry
    promoted = await r.promote_workflow_version(ANA, f"{WF}/versions/1.1.0", "stable")
    assert dict(promoted.aliases) == {"stable": "1.1.0"}
    assert (await r.get_workflow_version(ANA, f"{WF}/versions/stable")).version == "1.1.0"
    assert (await r.get_workflow_version(ANA, f"{WF}/versions/latest")).version == "1.2.0"
    await r.promote_workflow_version(ANA, f"{WF}/versions/latest", "canary")
    moved = await r.promote_workflow_version(ANA, f"{WF}/versions/canary", "stable")
    assert dict(moved.aliases) == {"canary": "1.2.0", "stable": "1.2.0"}
    for alias in ("latest", "draft", "Bad Alias", ""):
        with pytest.raises(InvalidArgumentError):
            await r.promote_workflow_version(ANA, f"{WF}/versions/1.0.0", alias)
    for missing in ("9.9.9", "nightly"):
        with pytest.raises(NotFoundError) as caught:
            await r.promote_workflow_version(ANA, f"{WF}/versions/{missing}", "beta")
        assert caught.value.reason == "VERSION_NOT_FOUND"
    with pytest.raises(NotFoundError) as caught:
        await r.get_workflow_version(ANA, f"{WF}/versions/nightly")
    assert caught.value.metadata["name"] == f"{WF}/versions/nightly"


async def test_diff_between_versions_aliases_and_the_draft(harness: Harness) -> None:
    await _three_versions(harness)
    r = harness.registry
    await r.promote_workflow_version(ANA, f"{WF}/versions/1.0.0", "stable")
    await r.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify", "log", "audit")))
    diff = await r.diff_workflow_versions(ANA, WF, base="stable", target="draft")
    added = sorted(c.step_id for c in diff.step_changes)
    assert added == ["audit", "log", "notify"]
    assert diff.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE
    same = await r.diff_workflow_versions(ANA, WF, base="1.2.0", target="latest")
    assert same.compatibility == diff_pb2.COMPATIBILITY_IDENTICAL
    with pytest.raises(NotFoundError):
        await r.diff_workflow_versions(ANA, WF, base="7.0.0", target="draft")


# -- clone, templates, builder --------------------------------------------------


async def test_clone_copies_the_draft_or_a_version(harness: Harness) -> None:
    r = harness.registry
    await _create(harness)
    await r.publish_workflow(ANA, WF)
    await r.update_workflow(ANA, WF, source(steps=("fetch", "store", "notify")))
    draft_copy = await r.clone_workflow(BOB, WF, new_workflow_id="orders-copy")
    assert (draft_copy.owner, draft_copy.display_name) == ("bob", "orders-copy")
    assert draft_copy.draft_version == "0.1.0-draft"
    assert b"notify" in draft_copy.draft_source
    assert draft_copy.latest is None and not draft_copy.aliases
    v1_copy = await r.clone_workflow(
        ANA, WF, version="1.0.0", new_definition_name="orders-v1", request_id="clone-1"
    )
    assert v1_copy.display_name == "orders-v1"
    assert b"notify" not in v1_copy.draft_source
    again = await r.clone_workflow(
        ANA, WF, version="1.0.0", new_definition_name="orders-v1", request_id="clone-1"
    )
    assert again.workflow_id == v1_copy.workflow_id
    with pytest.raises(NotFoundError) as caught:
        await r.clone_workflow(ANA, WF, version="4.0.0")
    assert caught.value.reason == "VERSION_NOT_FOUND"


async def test_templates_create_valid_publishable_workflows(harness: Harness) -> None:
    r = harness.registry
    listed = await r.list_templates()
    assert [t.name for t in listed.items] == [t.name for t in TEMPLATES]
    assert {t.pattern for t in listed.items} == set(Pattern)
    for template in listed.items:
        assert template.definition.steps, template.name
        row = await r.create_workflow_from_template(
            ANA, template.name, definition_name=f"my-{template.pattern.value}"
        )
        assert row.display_name == f"my-{template.pattern.value}"
        published = await r.publish_workflow(ANA, f"workflows/{row.workflow_id}")
        assert published.version.version == "1.0.0"
    with pytest.raises(NotFoundError):
        await r.create_workflow_from_template(ANA, "templates/unknown")
    created = await r.create_workflow_from_template(
        ANA, "templates/etl", workflow_id="etl-nightly", request_id="tpl-1"
    )
    again = await r.create_workflow_from_template(
        ANA, "templates/etl", workflow_id="etl-nightly", request_id="tpl-1"
    )
    assert again.workflow_id == created.workflow_id == "etl-nightly"


async def test_builder_output_can_be_created_and_published(harness: Harness) -> None:
    r = harness.registry
    built = await r.build_workflow(
        Pattern.ROUTING, "by-region", {"routes": ["emea", "apac", "amer"], "field": "region"}
    )
    assert not [d for d in built.diagnostics if d.severity >= 3]
    assert [s.id for s in built.definition.steps] == [
        "check_emea",
        "handle_emea",
        "check_apac",
        "handle_apac",
        "handle_amer",
    ]
    row = await r.create_workflow(ANA, Source(built.source))
    assert row.display_name == "by-region"
    assert (await r.publish_workflow(ANA, f"workflows/{row.workflow_id}")).version.version == (
        "1.0.0"
    )
    assert (await r.list_workflows(ANA)).items[0].workflow_id == row.workflow_id
