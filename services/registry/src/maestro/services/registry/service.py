"""Registry domain logic. Imports no grpc; talks to peers through protocols."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from maestro.runtime.context import Principal
from maestro.runtime.errors import (
    AlreadyExistsError,
    FieldViolation,
    InvalidArgumentError,
    InvalidDefinitionError,
    NotFoundError,
)
from maestro.services.registry.store import DuplicateWorkflowError, RegistryStore, WorkflowRow

FIRST_DRAFT_VERSION = "0.1.0-draft"
DEFAULT_TENANT = "default"
_WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{2,62}$")


@dataclass(frozen=True, slots=True)
class Problem:
    """An error diagnostic from validation."""

    code: str
    message: str
    path: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class Validation:
    """What the registry needs from validating a definition."""

    valid: bool
    definition: bytes
    name: str
    description: str
    tags: tuple[str, ...]
    digest: str
    problems: tuple[Problem, ...]


class Validator(Protocol):
    """Validates a definition document (the compiler service in production)."""

    async def validate(self, content: bytes, is_json: bool | None, filename: str) -> Validation: ...


def workflow_name(workflow_id: str) -> str:
    return f"workflows/{workflow_id}"


def parse_workflow_name(name: str, field: str = "name") -> str:
    """The ``{workflow}`` of ``workflows/{workflow}``, or InvalidArgumentError."""
    prefix, _, workflow_id = name.partition("/")
    if prefix != "workflows" or not _WORKFLOW_ID.match(workflow_id):
        raise InvalidArgumentError(
            f"{field} must look like workflows/{{workflow}}, got {name!r}",
            field_violations=[FieldViolation(field, "expected workflows/{workflow}")],
        )
    return workflow_id


class Registry:
    """Workflow definitions and drafts of every tenant."""

    def __init__(self, store: RegistryStore, validator: Validator) -> None:
        self._store = store
        self._validator = validator

    async def create_workflow(
        self,
        principal: Principal,
        content: bytes,
        *,
        is_json: bool | None = None,
        filename: str = "",
        workflow_id: str = "",
        request_id: str = "",
    ) -> WorkflowRow:
        """Creates a workflow with its first draft (idempotent on request_id)."""
        tenant = principal.tenant or DEFAULT_TENANT
        if request_id:
            existing = await self._store.find_by_request_id(tenant, request_id)
            if existing is not None:
                return existing
        if workflow_id and not _WORKFLOW_ID.match(workflow_id):
            raise InvalidArgumentError(
                "workflow_id must be 3-63 lowercase letters, digits or '-', starting with a letter",
                field_violations=[FieldViolation("workflow_id", "invalid id")],
            )
        validation = await self._validator.validate(content, is_json, filename)
        syntax = [p for p in validation.problems if p.code == "SYNTAX_ERROR"]
        if syntax:
            raise InvalidArgumentError(
                syntax[0].message,
                reason="SOURCE_SYNTAX_ERROR",
                metadata={"line": str(syntax[0].line), "column": str(syntax[0].column)},
            )
        if not validation.valid:
            raise InvalidDefinitionError(
                f"the definition has {len(validation.problems)} error(s)",
                metadata={"errors": str(len(validation.problems))},
                field_violations=[
                    FieldViolation(p.path or "/", p.message, p.code) for p in validation.problems
                ],
            )
        now = datetime.now(UTC)
        new_id = workflow_id or f"wf-{uuid.uuid4().hex[:12]}"
        row = WorkflowRow(
            tenant=tenant,
            workflow_id=new_id,
            owner=principal.subject or "anonymous",
            state="DRAFT",
            display_name=validation.name,
            description=validation.description,
            tags=validation.tags,
            draft_version=FIRST_DRAFT_VERSION,
            draft_source=content,
            draft_definition=validation.definition,
            draft_digest=validation.digest,
            etag=_etag(validation.digest, now),
            request_id=request_id or None,
            create_time=now,
            update_time=now,
            delete_time=None,
        )
        try:
            await self._store.insert_workflow(row)
        except DuplicateWorkflowError as exc:
            if request_id:
                existing = await self._store.find_by_request_id(tenant, request_id)
                if existing is not None:
                    return existing
            raise AlreadyExistsError(
                f"workflow {workflow_name(new_id)} already exists",
                metadata={"name": workflow_name(new_id)},
            ) from exc
        return row

    async def get_workflow(
        self, principal: Principal, name: str, *, show_deleted: bool = False
    ) -> WorkflowRow:
        """The workflow, or NotFoundError (also for other tenants' workflows)."""
        workflow_id = parse_workflow_name(name)
        row = await self._store.get_workflow(principal.tenant or DEFAULT_TENANT, workflow_id)
        if row is None or (row.delete_time is not None and not show_deleted):
            raise NotFoundError(
                f"workflow {name} not found",
                reason="WORKFLOW_NOT_FOUND",
                metadata={"name": name},
            )
        return row


def _etag(digest: str, when: datetime) -> str:
    return hashlib.sha256(f"{digest}:{when.isoformat()}".encode()).hexdigest()[:32]
