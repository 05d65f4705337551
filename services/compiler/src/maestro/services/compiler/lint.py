"""Lint: validation plus the rules that catch valid but risky definitions.

Rules (docs/dsl.md, "Diagnostic codes"), each a stable code that callers may
disable:

* ``MISSING_TIMEOUT`` (warning): a task, human or subworkflow step (or loop
  body) without ``timeout``;
* ``UNBOUNDED_RETRY`` (error): ``retry.maxAttempts`` of 0 (unbounded) or above
  ``MAX_RETRY_ATTEMPTS``;
* ``ORPHANED_OUTPUT`` (warning): a step declares ``outputSchema`` but no
  expression reads its output;
* ``PLAINTEXT_SECRET`` (error): a literal secret in ``config`` or in an
  ``input`` string literal, where a ``secret://<name>`` reference belongs;
* ``MISSING_POLICY_LABEL`` (warning): no ``labels.classification``, or one
  that is not a classification;
* ``FANOUT_LIMIT`` (error): more than ``MAX_STEPS`` steps, a loop
  ``parallelism`` above ``MAX_LOOP_PARALLELISM``, or a graph level wider than
  ``MAX_LEVEL_WIDTH`` steps.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any, TypeGuard

from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.services.compiler.expressions import ScannedExpression, scan_expressions
from maestro.services.compiler.findings import Finding, Report, locate
from maestro.services.compiler.graph import StepGraph, id_of, step_graph
from maestro.services.compiler.source import ParsedSource, pointer
from maestro.services.compiler.validate import Analysis, analyse

MAX_STEPS = 1000
MAX_LOOP_PARALLELISM = 100
MAX_LEVEL_WIDTH = 200
MAX_RETRY_ATTEMPTS = 100
TIMEOUT_STEP_TYPES = frozenset({"task", "human", "subworkflow"})
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted", "secret")
"""``labels.classification`` values: ``maestro.common.v1.Classification`` names."""

LINT_RULES: Mapping[str, str] = {
    "MISSING_TIMEOUT": "warning",
    "UNBOUNDED_RETRY": "error",
    "ORPHANED_OUTPUT": "warning",
    "PLAINTEXT_SECRET": "error",
    "MISSING_POLICY_LABEL": "warning",
    "FANOUT_LIMIT": "error",
}
"""Lint rule codes and their severities; only these can be disabled."""

# The last word(s) of a key that names a secret: `password`, `db_password`,
# `apiKey`, `X-Api-Key`, `Authorization`, `private_key`; not `max_tokens` or
# `token_url`.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "authorization",
        "credential",
        "credentials",
    }
)
SECRET_WORD_PAIRS = frozenset({("api", "key"), ("private", "key"), ("secret", "key")})
SECRET_REFERENCE = re.compile(r"^(?:(?:Bearer|Basic)\s+)?secret://[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Values that are credentials whatever their key: bearer/basic tokens, API keys
# with well-known prefixes, and URLs with a password in them.
CREDENTIAL = re.compile(
    r"(?:^|\s)(?:Bearer|Basic)\s+(?!secret://)\S{8,}"
    r"|(?<![A-Za-z0-9])(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16})"
    r"|://[^/\s:@]+:[^/\s@]+@"
)
_CEL_STRING = re.compile(r"""[rR]?("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')""")
_CEL_STRING_ONLY = re.compile(r"""^\s*[rR]?("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')\s*$""")
_WORD_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")


def check_disabled_rules(disabled_rules: Collection[str]) -> None:
    """Raises ``InvalidArgumentError`` naming each entry that is not a lint rule."""
    violations = [
        FieldViolation(
            f"disabled_rules[{i}]",
            f"{rule!r} is not a lint rule; rules: {', '.join(LINT_RULES)}",
        )
        for i, rule in enumerate(disabled_rules)
        if rule not in LINT_RULES
    ]
    if violations:
        raise InvalidArgumentError(
            f"disabled_rules: {violations[0].description}", field_violations=violations
        )


def lint(parsed: ParsedSource, disabled_rules: Collection[str] = ()) -> Report:
    """Validation findings plus lint findings, without ``disabled_rules``.

    Raises:
        InvalidArgumentError: a disabled rule is not one of ``LINT_RULES``.
    """
    check_disabled_rules(disabled_rules)
    return locate(parsed, lint_analysis(analyse(parsed.document), parsed.document, disabled_rules))


def lint_analysis(
    analysis: Analysis, doc: Any, disabled_rules: Collection[str] = ()
) -> list[Finding]:
    """The validation findings of ``analysis`` (of ``doc``) plus the lint
    findings, without ``disabled_rules`` (which must be lint rules)."""
    disabled = set(disabled_rules)
    findings = [*analysis.findings, *_lint_findings(doc, analysis.graph, analysis.expressions)]
    return [f for f in findings if f.code not in disabled]


def lint_findings(doc: Any) -> Iterator[Finding]:
    """The lint rules' findings (validation findings not included)."""
    graph = step_graph(doc)
    expressions = scan_expressions(doc) if graph is not None else []
    yield from _lint_findings(doc, graph, expressions)


def _lint_findings(
    doc: Any, graph: StepGraph | None, expressions: list[ScannedExpression]
) -> Iterator[Finding]:
    if not isinstance(doc, dict):
        return
    yield from _policy_label(doc)
    if graph is None:
        return
    for i, step in enumerate(graph.steps):
        if isinstance(step, dict):
            name = f"step {id_of(step) or f'steps[{i}]'!r}"
            yield from _step_rules(step, ("steps", i), name)
    yield from _orphaned_outputs(graph, expressions)
    yield from _fanout(graph)


def _step_rules(step: Mapping[str, Any], at: tuple[str | int, ...], name: str) -> Iterator[Finding]:
    kind = step.get("type")
    if isinstance(kind, str) and kind in TIMEOUT_STEP_TYPES and "timeout" not in step:
        yield Finding(
            "MISSING_TIMEOUT",
            f"{name}: a {kind} step without `timeout`; a stuck attempt holds the execution "
            "until the compiler's default timeout",
            pointer(*at, "timeout"),
            severity=LINT_RULES["MISSING_TIMEOUT"],
            hint="add a per-attempt `timeout`, for example `timeout: 30s`",
        )
    retry = step.get("retry")
    attempts = retry.get("maxAttempts") if isinstance(retry, dict) else None
    if _is_int(attempts) and (attempts == 0 or attempts > MAX_RETRY_ATTEMPTS):
        what = "unbounded (0)" if attempts == 0 else f"{attempts}"
        yield Finding(
            "UNBOUNDED_RETRY",
            f"{name}: `retry.maxAttempts` is {what}; at most {MAX_RETRY_ATTEMPTS} attempts "
            "are allowed",
            pointer(*at, "retry", "maxAttempts"),
            severity=LINT_RULES["UNBOUNDED_RETRY"],
            hint="set a bounded `maxAttempts` (for example 5) and a `maxBackoff`",
        )
    yield from _secrets(step, at, name)
    loop = step.get("loop")
    if isinstance(loop, dict):
        parallelism = loop.get("parallelism")
        if _is_int(parallelism) and parallelism > MAX_LOOP_PARALLELISM:
            yield Finding(
                "FANOUT_LIMIT",
                f"{name}: loop `parallelism` is {parallelism}; the limit is {MAX_LOOP_PARALLELISM}",
                pointer(*at, "loop", "parallelism"),
                severity=LINT_RULES["FANOUT_LIMIT"],
                hint=f"lower `parallelism` to at most {MAX_LOOP_PARALLELISM}",
            )
        body = loop.get("body")
        if isinstance(body, dict):
            yield from _step_rules(body, (*at, "loop", "body"), f"{name} (loop body)")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _policy_label(doc: Mapping[str, Any]) -> Iterator[Finding]:
    labels = doc.get("labels")
    classification = labels.get("classification") if isinstance(labels, dict) else None
    if classification in CLASSIFICATIONS:
        return
    problem = (
        "has no `labels.classification`; the default policy treats it as public"
        if classification is None
        else f"has `labels.classification: {classification}`, which is not a classification; "
        "the default policy treats it as the highest level"
    )
    yield Finding(
        "MISSING_POLICY_LABEL",
        f"the workflow {problem}",
        pointer("labels", "classification"),
        severity=LINT_RULES["MISSING_POLICY_LABEL"],
        hint=f"add `labels: {{classification: internal}}` (one of {', '.join(CLASSIFICATIONS)})",
    )


# Secrets --------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    """Whether a key names a secret (``apiKey``, ``db_password``, ``Authorization``)."""
    words = re.split(r"[^a-z0-9]+", _WORD_BOUNDARY.sub(r"\1 \2", key).lower())
    words = [w for w in words if w]
    if not words:
        return False
    return words[-1] in SECRET_WORDS or tuple(words[-2:]) in SECRET_WORD_PAIRS


def is_plaintext_secret(key: str | None, value: str) -> bool:
    """Whether a string value is a secret written in clear text."""
    if not value.strip() or SECRET_REFERENCE.match(value.strip()):
        return False
    return (key is not None and is_secret_key(key)) or CREDENTIAL.search(value) is not None


def _secrets(step: Mapping[str, Any], at: tuple[str | int, ...], name: str) -> Iterator[Finding]:
    config = step.get("config")
    if isinstance(config, dict):
        for path, key, value in _strings(config, (*at, "config"), None):
            if is_plaintext_secret(key, value):
                yield _secret_finding(name, path, key)
    inputs = step.get("input")
    if isinstance(inputs, dict):
        for key, expression in inputs.items():
            if not isinstance(expression, str) or ('"' not in expression and "'" not in expression):
                continue  # without a string literal, there is no literal secret
            whole = _CEL_STRING_ONLY.match(expression)
            literals = [m.group(1)[1:-1] for m in _CEL_STRING.finditer(expression)]
            # Each literal, and all of them joined (`"Bearer " + "abc..."`).
            if (whole and is_plaintext_secret(key, whole.group(1)[1:-1])) or any(
                is_plaintext_secret(None, literal) for literal in [*literals, "".join(literals)]
            ):
                yield _secret_finding(name, pointer(*at, "input", key), key)


def _strings(
    value: Any, at: tuple[str | int, ...], key: str | None
) -> Iterator[tuple[str, str | None, str]]:
    """(pointer, nearest key, value) of every string inside ``value``."""
    if isinstance(value, str):
        yield pointer(*at), key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*at, k), str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*at, i), key)


def _secret_finding(name: str, path: str, key: str | None) -> Finding:
    what = f"`{key}`" if key else "a value"
    return Finding(
        "PLAINTEXT_SECRET",
        f"{name}: {what} holds what looks like a plaintext secret",
        path,
        severity=LINT_RULES["PLAINTEXT_SECRET"],
        hint="store it in the secret store and reference it as `secret://<name>`",
    )


# Graph-wide rules -------------------------------------------------------------


def _orphaned_outputs(graph: StepGraph, expressions: list[ScannedExpression]) -> Iterator[Finding]:
    read: set[str] = set()
    for expression in expressions:
        read |= expression.step_ids
    for step_id, i in graph.index_of.items():
        schema = graph.steps[i].get("outputSchema")
        if isinstance(schema, dict) and schema and step_id not in read:
            yield Finding(
                "ORPHANED_OUTPUT",
                f"step {step_id!r} declares `outputSchema`, but no expression reads "
                f"`steps.{step_id}.output`",
                pointer("steps", i, "outputSchema"),
                severity=LINT_RULES["ORPHANED_OUTPUT"],
                hint="read the output downstream or in the workflow `outputs`, or remove "
                "`outputSchema`",
                related_steps=(step_id,),
            )


def _fanout(graph: StepGraph) -> Iterator[Finding]:
    if len(graph.steps) > MAX_STEPS:
        yield Finding(
            "FANOUT_LIMIT",
            f"the workflow has {len(graph.steps)} steps; the limit is {MAX_STEPS}",
            pointer("steps", MAX_STEPS),
            severity=LINT_RULES["FANOUT_LIMIT"],
            hint="split the workflow into subworkflows",
        )
    for depth, level in enumerate(graph.levels()):
        if len(level) > MAX_LEVEL_WIDTH:
            members = sorted(level, key=graph.index_of.__getitem__)
            first_over = members[MAX_LEVEL_WIDTH]
            yield Finding(
                "FANOUT_LIMIT",
                f"{len(level)} steps can run at the same time (graph level {depth}); the "
                f"limit is {MAX_LEVEL_WIDTH}",
                pointer("steps", graph.index_of[first_over]),
                severity=LINT_RULES["FANOUT_LIMIT"],
                hint="use a loop step with bounded `parallelism`, or add `needs` to stage them",
            )
