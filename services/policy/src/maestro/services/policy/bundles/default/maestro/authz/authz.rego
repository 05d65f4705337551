# Maestro's default authorization policy (Rego v1; runs on OPA, rego-cpp and regorus).
#
# Entry point: `data.maestro.authz.decision`, the decision for `input`:
#
#   {"allow": bool,
#    "reasons": [{"code": "UPPER_SNAKE", "message": "...", "rule": "maestro.authz.<check>"}],
#    "appeal": {"path": "...", "grantable_by_roles": [...], "grantable_by_subjects": [...],
#               "instructions": "..."}}            (denials only)
#
# Deny by default: a decision allows only when no check below denies and a role
# of the caller grants the action. Everything is a function of the input
# document (`decide(inp)`), so the bundle tests call it with literal inputs
# rather than `with input as`, which rego-cpp 1.5 miscompiles in some rules; the
# input is read once into `facts`, which the checks share.
# See README.md for the input document, the action catalog and the role matrix.
package maestro.authz

import rego.v1

import data.maestro.catalog
import data.maestro.config

decision := decide(input)

# Fail closed on malformed questions: a check whose expression is undefined (a
# number where a name belongs, a list for the labels) would otherwise read as
# "no denial", so only a well-formed input is decided at all.
decide(inp) := verdict(facts(inp)) if {
	well_formed(inp)
} else := {"allow": false, "reasons": public_reasons([invalid]), "appeal": appeal([invalid])} if {
	invalid := denial(
		"INPUT_INVALID",
		"the question is malformed: principal, action and resource must have the documented shape and types",
		"decide",
		[],
		"send a well-formed question (see the input document in README.md)",
	)
}

# The input document's shape: strings where names go, a list of role names, a
# map of string labels; absent members read as empty.
well_formed(inp) if {
	is_object(inp)
	principal := object.get(inp, "principal", {})
	resource := object.get(inp, "resource", {})
	is_object(principal)
	is_object(resource)
	is_string(object.get(inp, "action", ""))
	every key in ["tenant", "subject", "clearance", "purpose", "legal_basis", "reason_for_access"] {
		is_string(object.get(principal, key, ""))
	}
	every key in ["type", "name", "tenant", "classification"] {
		is_string(object.get(resource, key, ""))
	}
	roles := object.get(principal, "roles", [])
	is_array(roles)
	every role in roles {
		is_string(role)
	}
	labels := object.get(resource, "labels", {})
	is_object(labels)
	every key, value in labels {
		is_string(key)
		is_string(value)
	}
}

# The checks run once; a check that is undefined leaves the verdict undefined
# (the service then denies: fail closed).
verdict(f) := outcome(f, [d | some check in all; some d in check]) if {
	all := checks(f)
}

outcome(f, denied) := {"allow": false, "reasons": public_reasons(denied), "appeal": appeal(denied)} if {
	count(denied) > 0
} else := {"allow": true, "reasons": grants(f)}

# The eight checks in a stable order: identity, tenant, action, role,
# clearance, purpose, legal basis, reason for access. Undefined when any is.
checks(f) := [
	identity_denials(f),
	tenant_denials(f),
	action_denials(f),
	role_denials(f),
	clearance_denials(f),
	purpose_denials(f),
	legal_basis_denials(f),
	reason_for_access_denials(f),
]

public_reasons(denied) := [{"code": d.code, "message": d.message, "rule": d.rule} | some d in denied]

# -- the input document, read once ------------------------------------------------

facts(inp) := f if {
	principal := object.get(inp, "principal", {})
	resource := object.get(inp, "resource", {})
	labels := object.get(resource, "labels", {})
	action := object.get(inp, "action", "")
	spec := object.get(catalog.actions, action, unknown_action)
	level := resource_level(object.get(resource, "classification", ""), object.get(labels, "classification", ""))
	f := {
		"tenant": text(principal, "tenant"),
		"subject": text(principal, "subject"),
		"roles": {r | some r in object.get(principal, "roles", [])},
		"clearance": clearance_level(text(principal, "clearance")),
		"purpose": text(principal, "purpose"),
		"legal_basis": text(principal, "legal_basis"),
		"reason_for_access": text(principal, "reason_for_access"),
		"action": action,
		"known_action": spec != unknown_action,
		"allowed_roles": {r | some r in spec.roles},
		"read": spec.read,
		"resource_tenant": text(resource, "tenant"),
		"level": level,
		"sensitive": sensitive(level, labels),
	}
}

text(obj, key) := trim_space(object.get(obj, key, ""))

unknown_action := {"roles": [], "read": false, "unknown": true}

# -- checks -------------------------------------------------------------------------

identity_denials(f) := [denial(
	"SUBJECT_REQUIRED",
	"the caller is not authenticated (no subject)",
	"identity_denials",
	[],
	"authenticate, then retry",
) |
	f.subject == ""
]

# Tenant isolation: no action ever crosses tenants, whatever the roles.
tenant_denials(f) := array.concat(
	[denial(
		"TENANT_REQUIRED",
		"the caller has no tenant",
		"tenant_denials",
		[],
		"act within a tenant",
	) |
		f.tenant == ""
	],
	[denial(
		"TENANT_MISMATCH",
		concat("", [
			"tenant ", quoted(f.tenant),
			" may not access resources of tenant ", quoted(f.resource_tenant),
		]),
		"tenant_denials",
		[],
		"cross-tenant access is never granted: act from the resource's own tenant",
	) |
		f.tenant != ""
		f.tenant != f.resource_tenant
	],
)

action_denials(f) := [denial(
	"NO_MATCHING_RULE",
	concat("", ["the policy has no rule for action ", quoted(f.action)]),
	"action_denials",
	[],
	"use an action of the policy catalog (data.maestro.catalog.actions)",
) |
	not f.known_action
]

role_denials(f) := [denial(
	"ROLE_REQUIRED",
	concat("", [
		f.action, " needs one of the roles ", concat(", ", sort(f.allowed_roles)),
		"; the caller has ", role_list(f.roles),
	]),
	"role_denials",
	config.appeal.grantor_roles,
	concat("", ["ask a tenant admin for one of the roles ", concat(", ", sort(f.allowed_roles))]),
) |
	f.known_action
	count(f.allowed_roles & f.roles) == 0
]

role_list(have) := concat(", ", sort(have)) if count(have) > 0

role_list(have) := "no roles" if count(have) == 0

# Clearance: public resources need none; above public the caller's clearance
# must be at least the resource's classification.
clearance_denials(f) := [denial(
	"CLEARANCE_TOO_LOW",
	concat("", [
		"the resource is classified ", level_name(f.level),
		"; the caller's clearance is ", clearance_name(f.clearance),
	]),
	"clearance_denials",
	config.appeal.grantor_roles,
	concat("", ["request clearance ", level_name(f.level), " from a tenant admin"]),
) |
	f.level > config.classification_levels.public
	f.clearance < f.level
]

# Sensitive resources (confidential and above, or labelled as personal data)
# need a declared, allowed purpose and a recognised legal basis.
purpose_denials(f) := array.concat(
	[denial(
		"PURPOSE_REQUIRED",
		"access to sensitive data needs a declared purpose",
		"purpose_denials",
		[],
		concat("", ["declare a purpose (x-maestro-purpose), one of ", concat(", ", config.purposes)]),
	) |
		f.sensitive
		f.purpose == ""
	],
	[denial(
		"PURPOSE_NOT_ALLOWED",
		concat("", ["purpose ", quoted(f.purpose), " is not an allowed purpose"]),
		"purpose_denials",
		[],
		concat("", ["declare an allowed purpose, one of ", concat(", ", config.purposes)]),
	) |
		f.sensitive
		f.purpose != ""
		not f.purpose in config.purposes
	],
)

legal_basis_denials(f) := array.concat(
	[denial(
		"LEGAL_BASIS_REQUIRED",
		"access to sensitive data needs a legal basis",
		"legal_basis_denials",
		[],
		concat("", ["state a legal basis (x-maestro-legal-basis), one of ", concat(", ", config.legal_bases)]),
	) |
		f.sensitive
		f.legal_basis == ""
	],
	[denial(
		"LEGAL_BASIS_NOT_ALLOWED",
		concat("", ["legal basis ", quoted(f.legal_basis), " is not recognised"]),
		"legal_basis_denials",
		[],
		concat("", ["state a recognised legal basis, one of ", concat(", ", config.legal_bases)]),
	) |
		f.sensitive
		f.legal_basis != ""
		not f.legal_basis in config.legal_bases
	],
)

reason_for_access_denials(f) := [denial(
	"REASON_FOR_ACCESS_REQUIRED",
	concat("", ["reading sensitive data (", f.action, ") needs a reason for access"]),
	"reason_for_access_denials",
	[],
	"give a reason for access (x-maestro-reason), for example a ticket reference",
) |
	f.sensitive
	f.read
	f.reason_for_access == ""
]

# -- classification -----------------------------------------------------------------

# The resource's level: the higher of its classification and its
# `classification` label; unset is public, an unknown name the highest level.
resource_level(classification, label) := max({config.classification_levels.public} | {level(name) |
	some name in [trim_space(classification), trim_space(label)]
	name != ""
})

level(name) := object.get(config.classification_levels, lower(name), max_level)

max_level := max({l | some l in config.classification_levels})

# The caller's clearance level: none, or an unknown name, is 0 (below public).
clearance_level(name) := object.get(config.classification_levels, lower(name), 0)

clearance_name(l) := level_name(l) if l > 0

clearance_name(l) := "none" if l == 0

level_name(l) := name if {
	some name, v in config.classification_levels
	v == l
}

sensitive(level, labels) := true if {
	level >= config.sensitive_level
} else := true if {
	some key, value in config.sensitive_labels
	object.get(labels, key, "") == value
} else := false

# -- grants and appeals -------------------------------------------------------------

grants(f) := [{
	"code": "ROLE_GRANTED",
	"message": concat("", [f.action, " is granted to role ", role]),
	"rule": "maestro.authz.grants",
} |
	some role in sort(f.allowed_roles & f.roles)
]

denial(code, message, rule, grantors, remedy) := {
	"code": code,
	"message": message,
	"rule": concat("", ["maestro.authz.", rule]),
	"grantors": grantors,
	"remedy": remedy,
}

# Denials nobody can lift: with one of these the appeal names no grantor. (An
# object, not a set: rego-cpp looks a key up in an object far faster than it
# tests membership in a set rule.)
final_codes := {
	"TENANT_MISMATCH": true,
	"TENANT_REQUIRED": true,
	"SUBJECT_REQUIRED": true,
	"NO_MATCHING_RULE": true,
	"INPUT_INVALID": true,
}

# Who can lift the denials and how. Denials only the caller can fix (a missing
# purpose or reason) name no grantor; a final denial (another tenant, an unknown
# action) leaves nobody to ask, and the appeal then speaks of it alone.
appeal(denied) := {
	"path": appeal_path(grantors),
	"grantable_by_roles": sorted(grantors),
	"grantable_by_subjects": [],
	"instructions": concat("; ", [d.remedy | some d in scope]),
} if {
	scope := appeal_scope(denied)
	grantors := {g | some d in scope; some g in d.grantors}
}

appeal_scope(denied) := finals if {
	finals := [d | some d in denied; final_codes[d.code]]
	count(finals) > 0
} else := denied

appeal_path(grantors) := config.appeal.path if count(grantors) > 0

appeal_path(grantors) := "" if count(grantors) == 0

quoted(s) := concat("", ["\"", s, "\""])

# `sort` of a set as a plain array (on rego-cpp 1.5 `sort(set)` does not compare
# equal to an array with the same elements).
sorted(s) := [x | some x in sort(s)]
