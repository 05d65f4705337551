"""ListDecisions: AIP-160 filters and AIP-158 pages over the decision log.

Newest first by default (``create_time desc``), or ``create_time asc``;
keyset-paginated on ``(create_time, decision id)``, with tokens bound to the
caller's tenant, the filter and the order. A caller sees the decisions about its
own tenant: those whose principal or resource belongs to it.
"""

from __future__ import annotations

from datetime import datetime

from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context, paging
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.runtime.filtering import Field, MapField, compile_filter
from maestro.runtime.policy import Action
from maestro.services.policy.service import PolicyService
from maestro.services.policy.store import DecisionStore, decisions, utc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

DECISION_FIELDS: dict[str, Field | MapField] = {
    "principal.tenant": Field("string", decisions.c.tenant),
    "principal.subject": Field("string", decisions.c.subject),
    "action": Field("string", decisions.c.action),
    "allow": Field("bool", decisions.c.allow),
    "resource.type": Field("string", decisions.c.resource_type),
    "resource.name": Field("string", decisions.c.resource_name),
    "resource.tenant": Field("string", decisions.c.resource_tenant),
    "bundle_revision": Field("string", decisions.c.bundle_revision),
    "cached": Field("bool", decisions.c.cached),
    "enforcer": Field("string", decisions.c.enforcer),
    "create_time": Field("timestamp", decisions.c.create_time),
}
_ORDERS = {"": False, "create_time desc": False, "create_time asc": True}


class Listing:
    """The ListDecisions RPC."""

    def __init__(self, store: DecisionStore, service: PolicyService) -> None:
        self._store = store
        self._service = service

    async def list_decisions(self, request: pb.ListDecisionsRequest) -> pb.ListDecisionsResponse:
        """A page of the caller's tenant's decisions.

        Raises:
            InvalidArgumentError: INVALID_FILTER, INVALID_PAGE_TOKEN, a bad
                order_by or a negative page_size.
            PermissionDeniedError: POLICY_DENIED (action ``decision.read``).
        """
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        order = " ".join(request.order_by.lower().split())
        if order not in _ORDERS:
            raise InvalidArgumentError(
                "order_by must be 'create_time desc' or 'create_time asc', "
                f"got {request.order_by!r}",
                field_violations=[FieldViolation("order_by", "create_time desc|asc")],
            )
        ascending = _ORDERS[order]
        where = compile_filter(request.filter, DECISION_FIELDS)
        await self._service.authorize(
            Action.DECISION_READ, name="decisions", resource_type="decision"
        )
        tenant = context.current().principal.tenant
        query = paging.query_hash("decisions", tenant, request.filter, ascending)
        after: tuple[datetime, str] | None = None
        if request.page_token:
            key = paging.decode_page_token(request.page_token, query)
            try:
                after = (utc(datetime.fromisoformat(str(key[0]))), str(key[1]))
            except (ValueError, IndexError) as exc:
                raise paging.bad_page_token() from exc
        rows = await self._store.list_decisions(tenant, where, after, size + 1, ascending=ascending)
        more = len(rows) > size
        rows = rows[:size]
        token = ""
        if more and rows:
            last = rows[-1]
            token = paging.encode_page_token(
                [last.create_time.isoformat(), last.decision_id], query
            )
        return pb.ListDecisionsResponse(
            decisions=[decision_pb2.Decision.FromString(r.decision) for r in rows],
            next_page_token=token,
        )
