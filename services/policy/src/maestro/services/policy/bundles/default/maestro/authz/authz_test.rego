# Tests of the default policy. The policy service runs every `test_*` rule of
# the bundle when it loads it (a failing test keeps the bundle from becoming
# active) and `tests/unit/policy/test_bundle.py` runs them in CI; `opa test .`
# runs them too. `todo_test_*` rules are reported as skipped.
#
# Tests call `authz.decide(...)` with literal inputs instead of using
# `with input as`, which rego-cpp 1.5 miscompiles.
package maestro.authz_test

import rego.v1

import data.maestro.authz
import data.maestro.catalog
import data.maestro.config

base := {
	"principal": {
		"tenant": "acme",
		"subject": "ana",
		"roles": ["viewer"],
		"clearance": "",
		"purpose": "",
		"legal_basis": "",
		"reason_for_access": "",
	},
	"action": "workflow.read",
	"resource": {
		"type": "workflow",
		"name": "workflows/payroll",
		"tenant": "acme",
		"classification": "",
		"labels": {},
	},
	"context": {},
}

# `inp` with some principal (or resource) attributes replaced. One level at a
# time: object.union merges nested objects on OPA but not on rego-cpp.
with_principal(inp, attributes) := object.union(inp, {"principal": object.union(inp.principal, attributes)})

with_resource(inp, attributes) := object.union(inp, {"resource": object.union(inp.resource, attributes)})

# An input: `base` with the principal's roles and the action replaced.
ask(roles, action) := object.union(with_principal(base, {"roles": roles}), {"action": action})

# `ask` on a resource with the given classification.
ask_on(roles, action, classification) := with_resource(ask(roles, action), {"classification": classification})

codes(d) := [r.code | some r in d.reasons]

# -- tenant isolation ---------------------------------------------------------------

test_same_tenant_viewer_reads if {
	d := authz.decide(ask(["viewer"], "workflow.read"))
	d.allow
	codes(d) == ["ROLE_GRANTED"]
	not d.appeal
}

test_cross_tenant_is_denied_for_every_action_even_to_admins if {
	every action, _ in catalog.actions {
		d := authz.decide(with_resource(ask(["admin"], action), {"tenant": "globex"}))
		not d.allow
		codes(d) == ["TENANT_MISMATCH"]
	}
}

test_cross_tenant_denial_names_nobody_to_appeal_to if {
	d := authz.decide(with_resource(ask(["author"], "workflow.publish"), {"tenant": "globex"}))
	codes(d) == ["TENANT_MISMATCH", "ROLE_REQUIRED"]
	d.appeal.grantable_by_roles == []
	d.appeal.path == ""
	contains(d.appeal.instructions, "never granted")
	not contains(d.appeal.instructions, "tenant admin")
}

test_caller_without_tenant_is_denied if {
	d := authz.decide(with_principal(ask(["admin"], "workflow.read"), {"tenant": ""}))
	not d.allow
	"TENANT_REQUIRED" in codes(d)
}

test_anonymous_caller_is_denied if {
	d := authz.decide(with_principal(ask(["viewer"], "workflow.read"), {"subject": ""}))
	not d.allow
	codes(d)[0] == "SUBJECT_REQUIRED"
}

test_missing_input_is_denied_with_reasons if {
	d := authz.decide({})
	not d.allow
	codes(d) == ["SUBJECT_REQUIRED", "TENANT_REQUIRED", "NO_MATCHING_RULE"]
}

# -- actions and roles --------------------------------------------------------------

test_unknown_action_is_denied if {
	d := authz.decide(ask(["admin"], "workflow.teleport"))
	not d.allow
	codes(d) == ["NO_MATCHING_RULE"]
	d.appeal.grantable_by_roles == []
}

test_admin_may_do_every_action if {
	every action, _ in catalog.actions {
		authz.decide(ask(["admin"], action)).allow
	}
}

test_author_cannot_publish if {
	d := authz.decide(ask(["author"], "workflow.publish"))
	not d.allow
	codes(d) == ["ROLE_REQUIRED"]
	d.reasons[0].message == "workflow.publish needs one of the roles admin, publisher; the caller has author"
	d.reasons[0].rule == "maestro.authz.role_denials"
	d.appeal.grantable_by_roles == ["admin"]
	d.appeal.path == config.appeal.path
	d.appeal.instructions == "ask a tenant admin for one of the roles admin, publisher"
}

test_publisher_publishes_and_promotes if {
	authz.decide(ask(["publisher"], "workflow.publish")).allow
	authz.decide(ask(["publisher"], "workflow.promote")).allow
	not authz.decide(ask(["publisher"], "workflow.update")).allow
}

test_operator_runs_executions if {
	every action in ["execution.start", "execution.cancel", "execution.retry", "execution.compensate"] {
		authz.decide(ask(["operator"], action)).allow
		authz.decide(ask(["viewer"], action)).allow == false
	}
}

test_only_approvers_and_admins_complete_human_tasks if {
	authz.decide(ask(["approver"], "human_task.complete")).allow
	not authz.decide(ask(["operator"], "human_task.complete")).allow
}

test_only_admins_rotate_signing_keys if {
	authz.decide(ask(["admin"], "signer.rotate_key")).allow
	d := authz.decide(ask(["operator", "publisher"], "signer.rotate_key"))
	not d.allow
	d.reasons[0].message == "signer.rotate_key needs one of the roles admin; the caller has operator, publisher"
}

test_caller_without_roles_is_told_so if {
	d := authz.decide(ask([], "workflow.read"))
	not d.allow
	endswith(d.reasons[0].message, "; the caller has no roles")
}

test_allow_lists_every_granting_role if {
	d := authz.decide(ask(["viewer", "author", "operator"], "workflow.read"))
	d.allow
	[r.message | some r in d.reasons] == [
		"workflow.read is granted to role author",
		"workflow.read is granted to role operator",
		"workflow.read is granted to role viewer",
	]
}

# -- clearance ----------------------------------------------------------------------

test_public_resources_need_no_clearance if {
	authz.decide(ask_on(["viewer"], "workflow.read", "public")).allow
	authz.decide(ask_on(["viewer"], "workflow.read", "")).allow
}

test_clearance_below_classification_is_denied if {
	d := authz.decide(ask_on(["viewer"], "workflow.read", "internal"))
	not d.allow
	codes(d) == ["CLEARANCE_TOO_LOW"]
	d.reasons[0].message == "the resource is classified internal; the caller's clearance is none"
	d.appeal.grantable_by_roles == ["admin"]
	d.appeal.instructions == "request clearance internal from a tenant admin"
}

test_clearance_at_or_above_classification_is_allowed if {
	authz.decide(with_principal(ask_on(["viewer"], "workflow.read", "internal"), {"clearance": "internal"})).allow
	authz.decide(with_principal(ask_on(["viewer"], "workflow.read", "internal"), {"clearance": "SECRET"})).allow
}

test_classification_label_raises_the_level if {
	inp := with_resource(
		with_principal(ask(["viewer"], "workflow.read"), {"clearance": "internal"}),
		{"classification": "internal", "labels": {"classification": "restricted"}},
	)
	d := authz.decide(inp)
	"CLEARANCE_TOO_LOW" in codes(d)
}

test_unknown_classification_is_treated_as_the_highest if {
	inp := with_resource(
		with_principal(ask(["viewer"], "workflow.read"), {"clearance": "restricted"}),
		{"labels": {"classification": "cosmic"}},
	)
	d := authz.decide(inp)
	d.reasons[0].message == "the resource is classified secret; the caller's clearance is restricted"
}

# -- purpose, legal basis, reason for access ----------------------------------------

test_sensitive_data_needs_purpose_and_legal_basis if {
	d := authz.decide(with_principal(ask_on(["operator"], "execution.start", "confidential"), {"clearance": "restricted"}))
	not d.allow
	codes(d) == ["PURPOSE_REQUIRED", "LEGAL_BASIS_REQUIRED"]
	d.appeal.grantable_by_roles == []
	d.appeal.path == ""
	startswith(d.appeal.instructions, "declare a purpose (x-maestro-purpose), one of audit")
}

test_sensitive_write_with_purpose_and_legal_basis_is_allowed if {
	inp := with_principal(ask_on(["operator"], "execution.start", "restricted"), {
		"clearance": "restricted",
		"purpose": "incident-response",
		"legal_basis": "contract",
	})
	authz.decide(inp).allow
}

test_purpose_and_legal_basis_must_be_known if {
	inp := with_principal(ask_on(["operator"], "execution.start", "confidential"), {
		"clearance": "confidential",
		"purpose": "curiosity",
		"legal_basis": "because",
	})
	d := authz.decide(inp)
	codes(d) == ["PURPOSE_NOT_ALLOWED", "LEGAL_BASIS_NOT_ALLOWED"]
	d.reasons[0].message == "purpose \"curiosity\" is not an allowed purpose"
}

test_sensitive_read_needs_a_reason_for_access if {
	inp := with_principal(ask_on(["viewer"], "execution.read", "confidential"), {
		"clearance": "confidential",
		"purpose": "audit",
		"legal_basis": "legal-obligation",
	})
	d := authz.decide(inp)
	codes(d) == ["REASON_FOR_ACCESS_REQUIRED"]
	authz.decide(with_principal(inp, {"reason_for_access": "TICKET-42"})).allow
	not authz.decide(with_principal(inp, {"reason_for_access": "   "})).allow
}

test_internal_data_is_not_sensitive if {
	inp := with_principal(ask_on(["viewer"], "execution.read", "internal"), {"clearance": "internal"})
	authz.decide(inp).allow
}

test_personal_data_label_makes_public_data_sensitive if {
	inp := with_resource(ask(["viewer"], "receipt.read"), {"labels": {"pii": "true"}})
	d := authz.decide(inp)
	codes(d) == ["PURPOSE_REQUIRED", "LEGAL_BASIS_REQUIRED", "REASON_FOR_ACCESS_REQUIRED"]
}

test_every_denial_is_reported_in_order if {
	inp := with_principal(ask_on(["author"], "workflow.read", "restricted"), {"roles": []})
	d := authz.decide(inp)
	codes(d) == [
		"ROLE_REQUIRED",
		"CLEARANCE_TOO_LOW",
		"PURPOSE_REQUIRED",
		"LEGAL_BASIS_REQUIRED",
		"REASON_FOR_ACCESS_REQUIRED",
	]
	d.appeal.grantable_by_roles == ["admin"]
	count(split(d.appeal.instructions, "; ")) == 5
}

# -- the decision document ----------------------------------------------------------

test_decisions_have_the_documented_shape if {
	every inp in [ask(["viewer"], "workflow.read"), ask(["viewer"], "workflow.delete")] {
		d := authz.decide(inp)
		is_boolean(d.allow)
		count(d.reasons) > 0
		every r in d.reasons {
			object.keys(r) == {"code", "message", "rule"}
		}
	}
	object.keys(authz.decide(ask(["viewer"], "workflow.delete")).appeal) == {
		"path",
		"grantable_by_roles",
		"grantable_by_subjects",
		"instructions",
	}
}

# -- malformed questions fail closed ------------------------------------------------

invalid(inp) if {
	d := authz.decide(inp)
	not d.allow
	codes(d) == ["INPUT_INVALID"]
	d.appeal.grantable_by_roles == []
}

test_an_action_that_is_not_a_name_is_invalid if {
	invalid(object.union(ask(["admin"], "workflow.read"), {"action": 5}))
}

test_roles_that_are_not_a_list_of_names_are_invalid if {
	invalid(with_principal(ask(["admin"], "workflow.read"), {"roles": "admin"}))
	invalid(with_principal(ask(["admin"], "workflow.read"), {"roles": [1]}))
}

test_a_classification_that_is_not_a_name_is_invalid if {
	invalid(with_resource(ask(["admin"], "workflow.read"), {"classification": 3}))
}

test_labels_that_are_not_a_map_of_strings_are_invalid if {
	invalid(with_resource(ask(["admin"], "workflow.read"), {"labels": ["pii"]}))
	invalid(with_resource(ask(["admin"], "workflow.read"), {"labels": {"pii": true}}))
}

test_a_principal_that_is_not_an_object_is_invalid if {
	invalid(object.union(ask(["admin"], "workflow.read"), {"principal": []}))
	invalid(with_principal(ask(["admin"], "workflow.read"), {"subject": 7}))
}
