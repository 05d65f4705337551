"""Registry domain logic. Imports no grpc; talks to the compiler through a protocol.

Workflows are tenant-scoped: the tenant is the caller's (``default`` when the
caller names none) and a workflow of another tenant is NOT_FOUND, never
PERMISSION_DENIED. Every change of a definition is validated (or, for publish,
compiled) by the compiler before it is stored. Every change of a workflow is a
compare-and-set on its etag: with the caller's etag, a stale one is ABORTED/
ETAG_MISMATCH; without one, a lost race is retried a few times on fresh state.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import yaml
from google.protobuf import json_format

from maestro.common.v1 import (
    diagnostic_pb2,
    diff_pb2,
    plan_pb2,
    principal_pb2,
    source_pb2,
    workflow_pb2,
)
from maestro.runtime.context import Principal
from maestro.runtime.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    InvalidDefinitionError,
    NotFoundError,
)
from maestro.runtime.policy import (
    Action,
    PolicyDecision,
    PolicyGate,
    principal_message,
    served_for,
)
from maestro.runtime.policy import classification as policy_classification
from maestro.services.registry import listing, templates, versioning
from maestro.services.registry.store import (
    DuplicateRequestError,
    DuplicateVersionError,
    DuplicateWorkflowError,
    ReceiptEntry,
    RegistryStore,
    RequestRecord,
    VersionRow,
    WorkflowRow,
)

DEFAULT_TENANT = "default"
ANONYMOUS_OWNER = "anonymous"
LATEST = "latest"
DRAFT = "draft"
RESERVED_ALIASES = frozenset({LATEST, DRAFT})
FIRST_DRAFT_VERSION = versioning.FIRST_DRAFT_VERSION

_WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{3,62}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_MAX_REQUEST_ID = 128
_MAX_DEFINITION_NAME = 63
_COPY_SUFFIX = "-copy"
_CAS_ATTEMPTS = 5

T = TypeVar("T")


# -- what the domain needs from the compiler ----------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """A definition document as submitted (``format`` is a ``SourceFormat``)."""

    content: bytes
    format: int = source_pb2.SOURCE_FORMAT_UNSPECIFIED
    filename: str = ""


@dataclass(frozen=True)
class Validation:
    """The compiler's verdict on a document."""

    valid: bool
    definition: workflow_pb2.WorkflowDefinition
    digest: str
    diagnostics: tuple[diagnostic_pb2.Diagnostic, ...]


@dataclass(frozen=True)
class Compilation:
    """A compiled plan (only valid documents compile)."""

    plan: plan_pb2.CompiledPlan
    definition: workflow_pb2.WorkflowDefinition
    diagnostics: tuple[diagnostic_pb2.Diagnostic, ...]


class Compiler(Protocol):
    """The compiler service, as the registry uses it."""

    async def validate(self, source: Source) -> Validation: ...

    async def compile(self, source: Source) -> Compilation: ...

    async def diff(self, base: Source, target: Source) -> diff_pb2.WorkflowDiff: ...


class Attestor(Protocol):
    """Signs version-manifest receipts (``receipts.VersionAttestor``)."""

    async def attest(self, tenant: str, workflow_id: str, version: str) -> str:
        """Signs the just-published version's pending receipt now if it can;
        returns its name, or "" when it is left to the background relay
        (signer unreachable or slow, or the previous version still pending).
        Never raises for a signer failure."""
        ...


# -- results ------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    next_page_token: str = ""


@dataclass(frozen=True)
class Published:
    """The outcome of a publish."""

    version: VersionRow
    workflow: WorkflowRow


@dataclass(frozen=True)
class Template:
    """A built-in template with its (compiler-decoded) definition."""

    name: str
    display_name: str
    description: str
    pattern: templates.Pattern
    definition: workflow_pb2.WorkflowDefinition


@dataclass(frozen=True)
class Built:
    """A definition built from a pattern (not stored)."""

    definition: workflow_pb2.WorkflowDefinition
    source: bytes
    diagnostics: tuple[diagnostic_pb2.Diagnostic, ...] = field(default_factory=tuple)


# -- names --------------------------------------------------------------------


def workflow_name(workflow_id: str) -> str:
    return f"workflows/{workflow_id}"


def version_name(workflow_id: str, version: str) -> str:
    return f"workflows/{workflow_id}/versions/{version}"


def parse_workflow_name(name: str, field: str = "name") -> str:
    """The ``{workflow}`` of ``workflows/{workflow}``, or InvalidArgumentError."""
    prefix, _, workflow_id = name.partition("/")
    if prefix != "workflows" or not _WORKFLOW_ID.match(workflow_id):
        raise InvalidArgumentError(
            f"{field} must look like workflows/{{workflow}}, got {name!r}",
            field_violations=[FieldViolation(field, "expected workflows/{workflow}")],
        )
    return workflow_id


def parse_version_name(name: str, field: str = "name") -> tuple[str, str]:
    """``(workflow, version)`` of ``workflows/{workflow}/versions/{version}``."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "workflows" or parts[2] != "versions" or not parts[3]:
        raise InvalidArgumentError(
            f"{field} must look like workflows/{{workflow}}/versions/{{version}}, got {name!r}",
            field_violations=[
                FieldViolation(field, "expected workflows/{workflow}/versions/{version}")
            ],
        )
    return parse_workflow_name(f"workflows/{parts[1]}", field), parts[3]


def draft_diagnostics(row: WorkflowRow) -> list[diagnostic_pb2.Diagnostic]:
    """The warnings stored with the draft."""
    return [
        json_format.ParseDict(d, diagnostic_pb2.Diagnostic())
        for d in json.loads(row.draft_diagnostics or "[]")
    ]


# -- the registry -------------------------------------------------------------


class Registry:
    """Workflow definitions, drafts, versions, aliases and templates of every
    tenant."""

    def __init__(
        self,
        store: RegistryStore,
        compiler: Compiler,
        gate: PolicyGate | None = None,
        attestor: Attestor | None = None,
    ) -> None:
        """``gate`` None skips policy checks: only for domain unit tests; the
        server always passes one (and fails closed without the policy service).
        ``attestor`` None turns version-manifest receipts off: publishes queue
        no receipt."""
        self._store = store
        self._compiler = compiler
        self._gate = gate
        self._attestor = attestor
        self._template_definitions: dict[str, workflow_pb2.WorkflowDefinition] = {}

    async def _authorize(
        self, principal: Principal, action: Action, name: str, row: WorkflowRow | None = None
    ) -> PolicyDecision | None:
        """Asks the policy service (POLICY_DENIED / DEPENDENCY_UNAVAILABLE);
        returns the allowing decision (None without a gate)."""
        if self._gate is None:
            return None
        labels = _labels(row) if row is not None else {}
        return await self._gate.check(
            action,
            resource=name,
            tenant=_tenant(principal),
            classification=labels.get("classification"),
            labels=labels,
            principal=principal,
        )

    async def _authorize_read(self, principal: Principal, row: WorkflowRow) -> None:
        """``workflow.read`` of ``row`` (its draft's classification and labels),
        but for the services that read versions on their own authority
        (``READ_ON_OWN_AUTHORITY``)."""
        if not served_for(READ_ON_OWN_AUTHORITY):
            await self._authorize(
                principal, Action.WORKFLOW_READ, workflow_name(row.workflow_id), row
            )

    async def _authorize_existing(
        self, principal: Principal, action: Action, name: str
    ) -> PolicyDecision | None:
        if "/versions/" in name:
            workflow_id, _ = parse_version_name(name)
        else:
            workflow_id = parse_workflow_name(name)
        row = await self._store.get_workflow(_tenant(principal), workflow_id, with_latest=False)
        return await self._authorize(principal, action, f"workflows/{workflow_id}", row)

    # -- create / read ---------------------------------------------------------

    async def create_workflow(
        self,
        principal: Principal,
        source: Source,
        *,
        workflow_id: str = "",
        request_id: str = "",
    ) -> WorkflowRow:
        """Creates a workflow with a draft at ``0.1.0-draft`` (idempotent on
        ``request_id``)."""
        await self._authorize_create(principal)
        return await self._create(principal, source, workflow_id, request_id, "CREATE")

    async def get_workflow(
        self, principal: Principal, name: str, *, show_deleted: bool = False
    ) -> WorkflowRow:
        """The workflow with its draft and latest published version."""
        workflow_id = parse_workflow_name(name)
        row = await self._store.get_workflow(_tenant(principal), workflow_id)
        if row is None or (row.deleted and not show_deleted):
            raise _workflow_not_found(name)
        await self._authorize_read(principal, row)
        return row

    async def list_workflows(
        self,
        principal: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter: str = "",
        show_deleted: bool = False,
    ) -> Page[WorkflowRow]:
        """Workflows, newest update first (latest versions as summaries)."""
        tenant = _tenant(principal)
        await self._authorize(principal, Action.WORKFLOW_READ, "workflows/-")
        size = listing.page_size(page_size)
        query = listing.parse_workflow_filter(filter, show_deleted=show_deleted)
        token_query = listing.query_hash("workflows", tenant, query)
        after = listing.workflow_page_key(page_token, token_query)
        rows = await self._store.list_workflows(tenant, query, after=after, limit=size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = listing.encode_page_token(
                [last.update_time.isoformat(), last.workflow_id], token_query
            )
        if self._gate is not None:  # classified workflows the caller may not read are left out
            rows = await self._gate.readable(
                Action.WORKFLOW_READ, "workflows/-", rows, _labels, principal=principal
            )
        return Page(rows, token)

    # -- draft changes ---------------------------------------------------------

    async def update_workflow(
        self, principal: Principal, name: str, source: Source, *, etag: str = ""
    ) -> WorkflowRow:
        """Replaces the draft with a validated document. Submitting the current
        draft again (with a matching or no etag) changes nothing, not even the
        etag."""
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)
        _require_content(source)
        await self._authorize_existing(principal, Action.WORKFLOW_UPDATE, name)

        async def attempt(current: WorkflowRow) -> bool:
            if _is_draft(current, source):
                return True
            validation = await self._validated(source)
            label = FIRST_DRAFT_VERSION
            if current.latest is not None:
                _keep_classification(name, current.latest, validation.definition)
                diff = await self._compiler.diff(_version_source(current.latest), source)
                label = versioning.draft_label(current.latest.version, diff.required_bump)
            now = _now()
            return await self._store.update_workflow(
                tenant,
                workflow_id,
                expected_etag=current.etag,
                values={
                    **_draft_values(source, validation, now),
                    "draft_version": label,
                    "etag": _new_etag(),
                    "update_time": now,
                },
                tags=list(validation.definition.tags),
            )

        return await self._change(tenant, workflow_id, name, etag, attempt)

    async def delete_workflow(
        self, principal: Principal, name: str, *, etag: str = ""
    ) -> WorkflowRow:
        """Soft-deletes the workflow; deleting a deleted workflow returns it."""
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)
        await self._authorize_existing(principal, Action.WORKFLOW_DELETE, name)
        existing = await self._store.get_workflow(tenant, workflow_id, with_latest=False)
        if existing is None:
            raise _workflow_not_found(name)
        if existing.deleted:
            return await self._reload(tenant, workflow_id, name)

        async def attempt(current: WorkflowRow) -> bool:
            now = _now()
            return await self._store.update_workflow(
                tenant,
                workflow_id,
                expected_etag=current.etag,
                values={"delete_time": now, "update_time": now, "etag": _new_etag()},
            )

        return await self._change(tenant, workflow_id, name, etag, attempt)

    async def freeze_workflow(
        self, principal: Principal, name: str, *, frozen: bool, reason: str = ""
    ) -> WorkflowRow:
        """Freezes (publishing is refused) or unfreezes the workflow: an
        update (``workflow.update``)."""
        await self._authorize_existing(principal, Action.WORKFLOW_UPDATE, name)
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)

        async def attempt(current: WorkflowRow) -> bool:
            wanted_reason = reason if frozen else ""
            if current.frozen == frozen and current.frozen_reason == wanted_reason:
                return True
            return await self._store.update_workflow(
                tenant,
                workflow_id,
                expected_etag=current.etag,
                values={
                    "frozen": frozen,
                    "frozen_reason": wanted_reason,
                    "etag": _new_etag(),
                    "update_time": _now(),
                },
            )

        return await self._change(tenant, workflow_id, name, "", attempt)

    # -- publishing ------------------------------------------------------------

    async def publish_workflow(
        self,
        principal: Principal,
        name: str,
        *,
        bump: int = versioning.UNSPECIFIED,
        version: str = "",
        changelog: str = "",
        etag: str = "",
        request_id: str = "",
    ) -> Published:
        """Publishes the draft as an immutable version.

        The draft is compiled (the plan is stored with the version) and diffed
        against the latest published version; the diff decides the smallest
        allowed bump (see ``versioning.next_version``).

        With receipts on, the version's receipt is queued in the publish's
        transaction and signed right after it commits; when the signer cannot
        sign it in time the version is returned without a receipt, which the
        background relay attaches later.
        """
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)
        decision = await self._authorize_existing(principal, Action.WORKFLOW_PUBLISH, name)
        _check_request_id(request_id)
        replay = await self._replay(tenant, request_id, "PUBLISH")
        if replay is not None:
            return await self._published(tenant, replay, workflow_id, name)
        for _ in range(_CAS_ATTEMPTS):
            current = await self._live(tenant, workflow_id, name)
            _check_etag(current, etag, name)
            if current.frozen:
                raise FailedPreconditionError(
                    f"workflow {name} is frozen: {current.frozen_reason or 'no reason given'}",
                    reason="WORKFLOW_FROZEN",
                    metadata={"name": name},
                )
            draft = Source(current.draft_source, current.draft_format)
            compilation = await self._compiler.compile(draft)
            diff: diff_pb2.WorkflowDiff | None = None
            latest = current.latest
            if latest is not None:
                diff = await self._compiler.diff(_version_source(latest), draft)
            new_version = versioning.next_version(
                latest.version if latest else None,
                required=diff.required_bump if diff else versioning.UNSPECIFIED,
                bump=bump,
                explicit=version,
            )
            now = _now()
            row = VersionRow(
                tenant=tenant,
                workflow_id=workflow_id,
                version=new_version,
                seq=0,
                digest=compilation.plan.definition_digest or current.draft_digest,
                publish_time=now,
                published_by=principal.subject or ANONYMOUS_OWNER,
                changelog=changelog,
                diff_from_previous=diff.SerializeToString() if diff is not None else None,
                receipt="",
                source=current.draft_source,
                source_format=current.draft_format,
                definition=compilation.definition.SerializeToString(),
                plan=compilation.plan.SerializeToString(),
            )
            record = _request(tenant, request_id, "PUBLISH", workflow_id, now, version=new_version)
            try:
                committed = await self._store.publish_version(
                    row,
                    expected_etag=current.etag,
                    values={
                        "state": "PUBLISHED",
                        "latest_version": new_version,
                        # The draft now equals the new version: a default
                        # publish of it would be the next patch.
                        "draft_version": versioning.draft_label(new_version, versioning.PATCH),
                        "etag": _new_etag(),
                        "update_time": now,
                    },
                    request=record,
                    receipt=self._receipt_entry(principal, decision),
                )
            except DuplicateRequestError:
                replay = await self._replay(tenant, request_id, "PUBLISH")
                assert replay is not None
                return await self._published(tenant, replay, workflow_id, name)
            except DuplicateVersionError:
                committed = False
            if committed:
                if self._attestor is not None:
                    await self._attestor.attest(tenant, workflow_id, new_version)
                published = await self._store.get_version(tenant, workflow_id, new_version)
                assert published is not None
                return Published(published, await self._reload(tenant, workflow_id, name))
        raise _conflict(name)

    async def get_workflow_version(self, principal: Principal, name: str) -> VersionRow:
        """A published version by semver, alias or ``latest``."""
        workflow_id, spec = parse_version_name(name)
        workflow = await self._live(_tenant(principal), workflow_id, workflow_name(workflow_id))
        await self._authorize_read(principal, workflow)
        return await self._version(workflow, spec)

    async def list_workflow_versions(
        self, principal: Principal, parent: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page[VersionRow]:
        """Published versions, newest first, without source, definition and plan."""
        tenant, workflow_id = _tenant(principal), parse_workflow_name(parent, "parent")
        await self._authorize_read(principal, await self._live(tenant, workflow_id, parent))
        size = listing.page_size(page_size)
        token_query = listing.query_hash("versions", tenant, workflow_id)
        before = listing.version_page_key(page_token, token_query)
        rows = await self._store.list_versions(
            tenant, workflow_id, before_seq=before, limit=size + 1
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = listing.encode_page_token([rows[-1].seq], token_query)
        return Page(rows, token)

    async def diff_workflow_versions(
        self, principal: Principal, name: str, *, base: str, target: str
    ) -> diff_pb2.WorkflowDiff:
        """The compiler's diff between two versions (semver, alias, ``latest``
        or ``draft``); an empty base means ``latest``, an empty target
        ``draft``."""
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)
        workflow = await self._live(tenant, workflow_id, name)
        await self._authorize_read(principal, workflow)
        base_source = await self._source_of(workflow, base or LATEST)
        target_source = await self._source_of(workflow, target or DRAFT)
        return await self._compiler.diff(base_source, target_source)

    async def promote_workflow_version(
        self, principal: Principal, name: str, alias: str
    ) -> WorkflowRow:
        """Points ``alias`` at the version named by ``name`` (semver, alias or
        ``latest``; the alias stores the semver it resolved to)."""
        workflow_id, spec = parse_version_name(name)
        tenant = _tenant(principal)
        await self._authorize_existing(principal, Action.WORKFLOW_PROMOTE, name)
        if not _ALIAS.match(alias) or alias in RESERVED_ALIASES:
            raise InvalidArgumentError(
                f"alias {alias!r} must be lowercase letters, digits and '-', starting with a "
                f"letter, and not one of {', '.join(sorted(RESERVED_ALIASES))}",
                field_violations=[FieldViolation("alias", "invalid or reserved alias")],
            )

        async def attempt(current: WorkflowRow) -> bool:
            target = await self._version(current, spec)
            if current.aliases.get(alias) == target.version:
                return True
            return await self._store.set_alias(
                tenant,
                workflow_id,
                alias,
                target.version,
                expected_etag=current.etag,
                values={"etag": _new_etag(), "update_time": _now()},
            )

        return await self._change(tenant, workflow_id, workflow_name(workflow_id), "", attempt)

    # -- clone, templates, builder ---------------------------------------------

    async def clone_workflow(
        self,
        principal: Principal,
        name: str,
        *,
        version: str = "",
        new_workflow_id: str = "",
        new_definition_name: str = "",
        request_id: str = "",
    ) -> WorkflowRow:
        """Copies the draft (or a published version) into a new workflow whose
        definition is renamed (default: the source's name plus ``-copy``)."""
        tenant, workflow_id = _tenant(principal), parse_workflow_name(name)
        await self._authorize_create(principal)
        replayed = await self._replayed(principal, request_id, "CLONE")
        if replayed is not None:
            return replayed
        workflow = await self._live(tenant, workflow_id, name)
        await self._authorize_read(principal, workflow)  # a copy reads its source
        source = await self._source_of(workflow, version or DRAFT)
        copy = _renamed(source, new_definition_name or _copy_name(workflow.display_name))
        return await self._create(principal, copy, new_workflow_id, request_id, "CLONE")

    async def list_templates(self, *, page_size: int = 0, page_token: str = "") -> Page[Template]:
        """The built-in templates, by name."""
        size = listing.page_size(page_size)
        token_query = listing.query_hash("templates")
        after = listing.name_page_key(page_token, token_query)
        specs = [t for t in templates.TEMPLATES if after is None or t.name > after]
        page = specs[:size]
        items = [
            Template(
                name=spec.name,
                display_name=spec.display_name,
                description=spec.description,
                pattern=spec.pattern,
                definition=await self._template_definition(spec),
            )
            for spec in page
        ]
        token = ""
        if len(specs) > size:
            token = listing.encode_page_token([page[-1].name], token_query)
        return Page(items, token)

    async def create_workflow_from_template(
        self,
        principal: Principal,
        template: str,
        *,
        definition_name: str = "",
        workflow_id: str = "",
        request_id: str = "",
    ) -> WorkflowRow:
        """Creates a workflow from a template (as CreateWorkflow otherwise)."""
        await self._authorize_create(principal)
        prefix, _, template_id = template.partition("/")
        spec = templates.find_template(template_id) if prefix == "templates" else None
        if spec is None:
            raise NotFoundError(
                f"template {template!r} not found",
                reason="TEMPLATE_NOT_FOUND",
                metadata={"name": template},
            )
        source = Source(
            templates.to_yaml(spec.document(definition_name), comment=f"Created from {spec.name}."),
            source_pb2.SOURCE_FORMAT_YAML,
            f"{spec.template_id}.yaml",
        )
        return await self._create(
            principal, source, workflow_id, request_id, "CREATE_FROM_TEMPLATE"
        )

    async def build_workflow(
        self, pattern: templates.Pattern, definition_name: str, parameters: Mapping[str, Any]
    ) -> Built:
        """Builds and validates a definition for ``pattern``; nothing is stored.
        Problems in the result are diagnostics; bad parameters are errors."""
        document = templates.build(pattern, definition_name or pattern.value, parameters)
        content = templates.to_yaml(document, comment=f"Built from the {pattern.value} pattern.")
        validation = await self._compiler.validate(
            Source(content, source_pb2.SOURCE_FORMAT_YAML, f"{pattern.value}.yaml")
        )
        return Built(validation.definition, content, validation.diagnostics)

    # -- helpers ---------------------------------------------------------------

    async def _create(
        self,
        principal: Principal,
        source: Source,
        workflow_id: str,
        request_id: str,
        operation: str,
    ) -> WorkflowRow:
        """A new workflow with ``source`` as its draft, or the one a repeated
        ``request_id`` created; the caller has asked ``_authorize_create``."""
        tenant = _tenant(principal)
        replayed = await self._replayed(principal, request_id, operation)
        if replayed is not None:
            return replayed
        if workflow_id and not _WORKFLOW_ID.match(workflow_id):
            raise InvalidArgumentError(
                "workflow_id must be 4-63 lowercase letters, digits or '-', starting with a letter",
                field_violations=[FieldViolation("workflow_id", "invalid id")],
            )
        _require_content(source)
        validation = await self._validated(source)
        now = _now()
        new_id = workflow_id or f"wf-{uuid.uuid4().hex[:12]}"
        row = WorkflowRow(
            tenant=tenant,
            workflow_id=new_id,
            owner=principal.subject or ANONYMOUS_OWNER,
            state="DRAFT",
            draft_version=FIRST_DRAFT_VERSION,
            latest_version=None,
            frozen=False,
            frozen_reason="",
            etag=_new_etag(),
            create_time=now,
            update_time=now,
            delete_time=None,
            **_draft_values(source, validation, now),
        )
        try:
            await self._store.insert_workflow(
                row, request=_request(tenant, request_id, operation, new_id, now)
            )
        except DuplicateRequestError:
            replayed = await self._replayed(principal, request_id, operation)
            assert replayed is not None
            return replayed
        except DuplicateWorkflowError as exc:
            raise AlreadyExistsError(
                f"workflow {workflow_name(new_id)} already exists",
                metadata={"name": workflow_name(new_id)},
            ) from exc
        return await self._reload(tenant, new_id, workflow_name(new_id))

    def _receipt_entry(
        self, principal: Principal, decision: PolicyDecision | None
    ) -> ReceiptEntry | None:
        """What the version's receipt needs from this publish call; None when
        receipts are off."""
        if self._attestor is None:
            return None
        published_by = principal_message(principal)
        # The signer requires the receipt's tenant, the one the version lives
        # in (``default`` for a caller without one).
        published_by.tenant = _tenant(principal)
        return ReceiptEntry(
            published_by=json.dumps(
                json_format.MessageToDict(published_by), sort_keys=True, separators=(",", ":")
            ),
            policy_decision_ids=(decision.decision_id,) if decision is not None else (),
            policy_bundle_revision=decision.bundle_revision if decision is not None else "",
        )

    async def _validated(self, source: Source) -> Validation:
        """The compiler's validation of ``source``; raises unless it is valid."""
        validation = await self._compiler.validate(source)
        errors = [d for d in validation.diagnostics if d.severity == diagnostic_pb2.SEVERITY_ERROR]
        syntax = [d for d in errors if d.code == "SYNTAX_ERROR"]
        if syntax:
            raise InvalidArgumentError(
                syntax[0].message,
                reason="SOURCE_SYNTAX_ERROR",
                metadata={
                    "line": str(syntax[0].position.line),
                    "column": str(syntax[0].position.column),
                },
            )
        if not validation.valid or errors:
            raise InvalidDefinitionError(
                f"the definition has {len(errors)} error(s)"
                + (f"; first: {errors[0].message}" if errors else ""),
                metadata={"errors": str(len(errors))},
                field_violations=[FieldViolation(d.path or "/", d.message, d.code) for d in errors],
            )
        return validation

    async def _change(
        self,
        tenant: str,
        workflow_id: str,
        name: str,
        etag: str,
        attempt: Callable[[WorkflowRow], Awaitable[bool]],
    ) -> WorkflowRow:
        """Runs ``attempt`` on the live workflow until its compare-and-set
        commits. With a caller etag a lost race surfaces as ETAG_MISMATCH on
        the re-read; without one it is retried on the fresh state."""
        for _ in range(_CAS_ATTEMPTS):
            current = await self._live(tenant, workflow_id, name)
            _check_etag(current, etag, name)
            if await attempt(current):
                return await self._reload(tenant, workflow_id, name)
        raise _conflict(name)

    async def _live(self, tenant: str, workflow_id: str, name: str) -> WorkflowRow:
        row = await self._store.get_workflow(tenant, workflow_id)
        if row is None or row.deleted:
            raise _workflow_not_found(name)
        return row

    async def _reload(self, tenant: str, workflow_id: str, name: str) -> WorkflowRow:
        row = await self._store.get_workflow(tenant, workflow_id)
        if row is None:
            raise _workflow_not_found(name)
        return row

    async def _version(self, workflow: WorkflowRow, spec: str) -> VersionRow:
        """The version ``spec`` (semver, alias or ``latest``) names."""
        resolved: str | None
        if spec == LATEST:
            resolved = workflow.latest_version
        elif versioning.is_semver(spec):
            resolved = spec
        else:
            resolved = workflow.aliases.get(spec)
        found = None
        if resolved is not None:
            if workflow.latest is not None and workflow.latest.version == resolved:
                found = workflow.latest
            else:
                found = await self._store.get_version(
                    workflow.tenant, workflow.workflow_id, resolved
                )
        if found is None:
            name = version_name(workflow.workflow_id, spec)
            raise NotFoundError(
                f"version {name} not found", reason="VERSION_NOT_FOUND", metadata={"name": name}
            )
        return found

    async def _source_of(self, workflow: WorkflowRow, spec: str) -> Source:
        if spec == DRAFT:
            return Source(workflow.draft_source, workflow.draft_format)
        return _version_source(await self._version(workflow, spec))

    async def _authorize_create(self, principal: Principal) -> None:
        """``workflow.create`` on the collection: every way to make a workflow
        (create, from a template, clone) asks it before anything else."""
        await self._authorize(principal, Action.WORKFLOW_CREATE, "workflows/-")

    async def _replayed(
        self, principal: Principal, request_id: str, operation: str
    ) -> WorkflowRow | None:
        """The workflow a repeated create-like ``request_id`` made, if the
        caller may read it (a repeat shows the workflow)."""
        _check_request_id(request_id)
        tenant = _tenant(principal)
        replay = await self._replay(tenant, request_id, operation)
        if replay is None:
            return None
        row = await self._reload(tenant, replay.workflow_id, workflow_name(replay.workflow_id))
        await self._authorize_read(principal, row)
        return row

    async def _replay(self, tenant: str, request_id: str, operation: str) -> RequestRecord | None:
        if not request_id:
            return None
        record = await self._store.find_request(tenant, request_id)
        if record is not None and record.operation != operation:
            raise InvalidArgumentError(
                f"request_id {request_id!r} was already used for another request",
                field_violations=[FieldViolation("request_id", "already used")],
            )
        return record

    async def _published(
        self, tenant: str, record: RequestRecord, workflow_id: str, name: str
    ) -> Published:
        if record.workflow_id != workflow_id or record.version is None:
            raise InvalidArgumentError(
                f"request_id {record.request_id!r} was already used for another workflow",
                field_violations=[FieldViolation("request_id", "already used")],
            )
        version = await self._store.get_version(tenant, workflow_id, record.version)
        if version is None:  # pragma: no cover - recorded in the same transaction
            raise _workflow_not_found(name)
        return Published(version, await self._reload(tenant, workflow_id, name))

    async def _template_definition(
        self, spec: templates.TemplateSpec
    ) -> workflow_pb2.WorkflowDefinition:
        cached = self._template_definitions.get(spec.template_id)
        if cached is None:
            validation = await self._validated(
                Source(templates.to_yaml(spec.document()), source_pb2.SOURCE_FORMAT_YAML)
            )
            cached = self._template_definitions[spec.template_id] = validation.definition
        return cached


# -- module helpers -----------------------------------------------------------


READ_ON_OWN_AUTHORITY = frozenset({"scheduler"})
"""Services whose reads are not checked as a person's: the scheduler reads the
version an authorized start runs (and its receipt for execution receipts)."""


def _tenant(principal: Principal) -> str:
    return principal.tenant or DEFAULT_TENANT


def _keep_classification(
    name: str, published: VersionRow, draft: workflow_pb2.WorkflowDefinition
) -> None:
    """Refuses a draft whose labels would let more callers read than the
    latest published version's do.

    Reads are checked against the draft's labels, and versions are published
    from drafts, so each version is at most as protected as the draft after
    it: a draft that lowered its classification, or dropped a flag such as
    ``pii: "true"`` that makes reads sensitive, would open every published
    version to readers without the clearance, purpose or reason it was
    published for. Levels rank as the default bundle ranks them: no
    classification is public, an unknown name the highest level. Declassifying
    takes a new workflow (cloning reads the source at its own classification,
    so only the cleared can).
    """
    before = workflow_pb2.WorkflowDefinition.FromString(published.definition).labels
    was, now = before.get("classification", ""), draft.labels.get("classification", "")
    dropped = sorted(
        key for key, value in before.items() if value == "true" and draft.labels.get(key) != value
    )
    if _classification_rank(now) < _classification_rank(was) or dropped:
        what = (
            f"drops the label(s) {', '.join(dropped)}"
            if dropped
            else f"is classified {now or 'public'}"
        )
        raise FailedPreconditionError(
            f"the draft of {name} {what}, below its published version {published.version} "
            f"({was or 'public'}): a workflow's protection never goes down; clone it into a "
            "new workflow to declassify",
            reason="CLASSIFICATION_LOWERED",
            metadata={
                "published": was or "public",
                "draft": now or "public",
                "version": published.version,
                "dropped_labels": ",".join(dropped),
            },
        )


_HIGHEST_CLASSIFICATION = max(principal_pb2.Classification.values())


def _classification_rank(name: str) -> int:
    """A classification's level as the default bundle ranks it: none is
    public, an unknown name the highest."""
    if not name.strip():
        return policy_classification("public")
    return policy_classification(name) or _HIGHEST_CLASSIFICATION


def _labels(row: WorkflowRow) -> dict[str, str]:
    """The policy labels of a workflow: its draft's (classification included)."""
    if not row.draft_definition:
        return {}
    return dict(workflow_pb2.WorkflowDefinition.FromString(row.draft_definition).labels)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_etag() -> str:
    return uuid.uuid4().hex


def _require_content(source: Source) -> None:
    if not source.content:
        raise InvalidArgumentError(
            "source.content is empty",
            field_violations=[FieldViolation("source.content", "must not be empty")],
        )


def _check_request_id(request_id: str) -> None:
    if len(request_id) > _MAX_REQUEST_ID:
        raise InvalidArgumentError(
            f"request_id is longer than {_MAX_REQUEST_ID} characters",
            field_violations=[FieldViolation("request_id", "too long")],
        )


def _check_etag(current: WorkflowRow, etag: str, name: str) -> None:
    if etag and etag != current.etag:
        raise AbortedError(
            f"workflow {name} was changed since it was read: re-read it and retry",
            reason="ETAG_MISMATCH",
            metadata={"current_etag": current.etag, "name": name},
        )


def _conflict(name: str) -> AbortedError:
    return AbortedError(
        f"workflow {name} kept changing concurrently: re-read it and retry",
        reason="ETAG_MISMATCH",
        metadata={"name": name},
    )


def _workflow_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"workflow {name} not found", reason="WORKFLOW_NOT_FOUND", metadata={"name": name}
    )


def _request(
    tenant: str,
    request_id: str,
    operation: str,
    workflow_id: str,
    now: datetime,
    *,
    version: str | None = None,
) -> RequestRecord | None:
    if not request_id:
        return None
    return RequestRecord(tenant, request_id, operation, workflow_id, version, now)


def _is_draft(row: WorkflowRow, source: Source) -> bool:
    return source.content == row.draft_source and source.format == row.draft_format


def _version_source(version: VersionRow) -> Source:
    return Source(version.source, version.source_format)


def _draft_values(source: Source, validation: Validation, now: datetime) -> dict[str, Any]:
    definition = validation.definition
    warnings = [
        json_format.MessageToDict(d)
        for d in validation.diagnostics
        if d.severity != diagnostic_pb2.SEVERITY_ERROR
    ]
    return {
        "display_name": definition.name,
        "description": definition.description,
        "tags": tuple(definition.tags),
        "draft_source": source.content,
        "draft_format": source.format,
        "draft_definition": definition.SerializeToString(),
        "draft_digest": validation.digest,
        "draft_diagnostics": json.dumps(warnings, separators=(",", ":")),
        "draft_update_time": now,
    }


def _copy_name(name: str) -> str:
    return name[: _MAX_DEFINITION_NAME - len(_COPY_SUFFIX)].rstrip("-") + _COPY_SUFFIX


def _is_json(source: Source) -> bool:
    if source.format == source_pb2.SOURCE_FORMAT_JSON:
        return True
    if source.format == source_pb2.SOURCE_FORMAT_YAML:
        return False
    return source.content.lstrip().startswith(b"{")


def _renamed(source: Source, name: str) -> Source:
    """``source`` with its definition's ``name`` set (re-serialised in the same
    syntax; YAML comments do not survive a rename)."""
    is_json = _is_json(source)
    try:
        document: Any = json.loads(source.content) if is_json else yaml.safe_load(source.content)
    except (ValueError, yaml.YAMLError) as exc:  # stored sources were valid once
        raise InvalidArgumentError("the source document no longer parses") from exc
    if not isinstance(document, dict):
        raise InvalidArgumentError("the source document is not a mapping")
    if document.get("name") == name:
        return source
    document["name"] = name
    if is_json:
        content = json.dumps(document, indent=2, ensure_ascii=False).encode()
    else:
        content = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
    return Source(content, source.format, source.filename)
