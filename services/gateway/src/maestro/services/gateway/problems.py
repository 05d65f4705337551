"""Errors as RFC 9457 problems, with what REST adds to the shared mapping
(``maestro.runtime.problem``): the members of a policy denial.

An enforcing service turns a policy denial into ``PERMISSION_DENIED`` with an
``ErrorInfo`` of reason ``POLICY_DENIED`` whose metadata carries the decision:
``decision_id``, ``reasons`` (a JSON list of ``{code, message, ...}``) and
``appeal`` (a JSON object, ``maestro.policy.v1.Appeal`` in proto JSON). The
problem body gets them as the members ``decisionId``, ``reasons`` (each
``{code, message}``) and ``appeal``; a key that is missing or does not parse
leaves its member out (a packed ``maestro.policy.v1.Decision`` detail, if the
service sent one, fills the gaps). A key that became a member leaves
``metadata``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from google.protobuf import json_format

from maestro.policy.v1 import decision_pb2
from maestro.runtime.errors import Code, MaestroError
from maestro.runtime.problem import problem

log = logging.getLogger("maestro.gateway.problems")

POLICY_DENIED = "POLICY_DENIED"
DECISION_ID_KEY = "decision_id"
REASONS_KEY = "reasons"
APPEAL_KEY = "appeal"
_MEMBER_KEYS = {"decisionId": DECISION_ID_KEY, "reasons": REASONS_KEY, "appeal": APPEAL_KEY}


def is_policy_denial(error: MaestroError) -> bool:
    return error.code == Code.PERMISSION_DENIED and error.reason == POLICY_DENIED


def _json(error: MaestroError, key: str) -> Any:
    text = error.metadata.get(key)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.warning("the %s of a policy denial is not JSON; left out", key)
        return None


def _reasons(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list):
        return None
    reasons = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            reasons.append(
                {"code": item["code"], "message": message if isinstance(message, str) else ""}
            )
        elif isinstance(item, str):
            reasons.append({"code": item, "message": ""})
    return reasons


def _packed_decision(error: MaestroError) -> decision_pb2.Decision | None:
    for detail in getattr(error, "raw_details", ()):
        if detail.Is(decision_pb2.Decision.DESCRIPTOR):
            decision = decision_pb2.Decision()
            detail.Unpack(decision)
            return decision
    return None


def denial_members(error: MaestroError) -> dict[str, Any]:
    """``decisionId``, ``reasons`` and ``appeal`` of a policy denial (those that
    are known); nothing for any other error."""
    if not is_policy_denial(error):
        return {}
    members: dict[str, Any] = {}
    decision_id = error.metadata.get(DECISION_ID_KEY)
    if decision_id:
        members["decisionId"] = decision_id
    reasons = _reasons(_json(error, REASONS_KEY))
    if reasons is not None:
        members["reasons"] = reasons
    appeal = _json(error, APPEAL_KEY)
    if isinstance(appeal, dict):
        members["appeal"] = appeal
    if len(members) < len(_MEMBER_KEYS):
        decision = _packed_decision(error)
        if decision is not None:
            if decision.name:
                members.setdefault("decisionId", decision.name.removeprefix("decisions/"))
            if decision.reasons:
                members.setdefault(
                    "reasons", [{"code": r.code, "message": r.message} for r in decision.reasons]
                )
            if decision.HasField("appeal"):
                members.setdefault("appeal", json_format.MessageToDict(decision.appeal))
    return members


def http_problem(
    error: MaestroError, *, instance: str = "", request_id: str = ""
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, problem+json body) of ``error``: the shared mapping, plus
    ``decisionId``/``reasons``/``appeal`` for a policy denial (their metadata
    keys then leave ``metadata``)."""
    status, body = problem(error, instance=instance, request_id=request_id)
    members = denial_members(error)
    if members:
        body.update(members)
        metadata = {
            k: v for k, v in error.metadata.items() if k not in {_MEMBER_KEYS[m] for m in members}
        }
        if metadata:
            body["metadata"] = metadata
        else:
            body.pop("metadata", None)
    return status, body
