"""The CEL expressions of a workflow document and their compile-time checks.

Each expression is type-checked with exactly the variables docs/dsl.md puts in
its scope: ``inputs`` (typed from ``inputSchema``), ``steps.<id>.output`` for
every step its step transitively ``needs`` (typed from that step's
``outputSchema``; workflow ``outputs`` see every step), and in a loop body
``item`` (dyn) and ``index`` (int). Results must have the type their place
requires: a condition a bool, loop items a list, a delay's ``until`` a string
or timestamp.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro.services.compiler import cel
from maestro.services.compiler.findings import Finding
from maestro.services.compiler.graph import StepGraph, id_of
from maestro.services.compiler.source import pointer

Role = Literal["input", "condition", "items", "until", "output"]

_REQUIRED_TYPES: dict[Role, tuple[tuple[str, ...], str]] = {
    "condition": (("BOOL",), "a bool"),
    "items": (("LIST",), "a list"),
    "until": (("STRING", "TIMESTAMP"), "an RFC 3339 string or a timestamp"),
}
_LOOP_VARIABLES = {"item": cel.T.DYN, "index": cel.T.INT}
# `steps.<id>` or `steps["<id>"]` not preceded by a member dot (`x.steps.y`);
# a CEL string literal (matched so that text inside quotes is skipped); a
# comment start; any other `steps` (`(steps).a`, `.steps.a`, `x.steps`). The
# `-<word>` parts after `steps.<id>` are looked at, not consumed, so that in
# `steps.a-steps.b.output` both reads are seen.
_REFERENCE = re.compile(
    # Each alternative starts with a fixed character, so that the search skips
    # ahead to candidates: hence `s(?<![\w.]s)teps` for "`steps` not preceded
    # by a word character or a dot".
    r"""s(?<![\w.]s)teps\s*\.\s*(?P<id>[A-Za-z_][A-Za-z0-9_]*)(?=(?P<dashed>(?:-[A-Za-z0-9_]+)*))"""
    r"""|s(?<![\w.]s)teps\s*\[\s*(?P<q>["'])(?P<key>[^"'\\]*)(?P=q)\s*\]"""
    r"""|(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''"""
    r"""|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
    r"""|(?P<comment>//)|s(?<![A-Za-z0-9_]s)(?P<other>teps)(?![A-Za-z0-9_])"""
)
_STEP_REFERENCE = re.compile(r"^steps\.([A-Za-z_][A-Za-z0-9_]*)(.*)$")
_OUTPUT_READ = re.compile(
    r"(?<![A-Za-z0-9_.])steps\.([A-Za-z_][A-Za-z0-9_]*)\.output((?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)
_STEPS_WORD = re.compile(r"(?<![A-Za-z0-9_.])steps(?![A-Za-z0-9_])")


@dataclass(frozen=True, slots=True)
class Expression:
    """One CEL expression of a document.

    ``step`` is the index of the top-level step it belongs to (None for the
    workflow's ``outputs``); ``in_loop`` says whether ``item`` and ``index``
    are in scope; ``where`` names it for messages.
    """

    text: str
    path: str
    role: Role
    where: str
    step: int | None = None
    in_loop: bool = False


@dataclass(frozen=True, slots=True)
class StepReference:
    """A read of a step's output in an expression: its id, the 1-based column,
    and whether it is the bracket form (``steps["fetch-all"]``), the only way to
    read a step whose id is not a CEL identifier."""

    step_id: str
    column: int
    bracket: bool
    dashed: str = ""
    """For ``steps.fetch-all``, which CEL reads as ``steps.fetch - all``:
    ``fetch-all``."""


def step_references(expression: str) -> list[StepReference]:
    """The step reads of an expression, in order; text inside string literals
    is not a read."""
    return _scan(expression)[0]


def _scan(expression: str) -> tuple[list[StepReference], bool]:
    """(step reads, whether the text is plain): plain text has no comment, no
    backslash, no bracket read and no ``steps`` other than in ``steps.<id>``,
    so the reads found are exactly the steps CEL resolves (without comments and
    escapes, the scan splits string literals off exactly as CEL's lexer does)."""
    found = []
    plain = "\\" not in expression
    for match in _REFERENCE.finditer(expression):
        if match.group("id"):
            dashed = match.group("id") + match.group("dashed") if match.group("dashed") else ""
            found.append(StepReference(match.group("id"), match.start() + 1, False, dashed))
        elif match.group("key") is not None:
            found.append(StepReference(match.group("key"), match.start() + 1, True))
            plain = False
        elif match.group("comment") or match.group("other"):
            plain = False
    return found, plain


def referenced_steps(expression: str) -> set[str]:
    """The ids of the steps an expression reads as ``steps.<id>`` or
    ``steps["<id>"]``."""
    return {reference.step_id for reference in step_references(expression)}


@dataclass(frozen=True, slots=True)
class ScannedExpression:
    """An expression with its step reads (and the ids they read); ``plain`` as
    in ``_scan``."""

    expression: Expression
    references: list[StepReference]
    plain: bool
    step_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Structure:
    """What a type-check of an expression depends on (``_Scope.structure``):
    ``skeleton`` and ``reads`` (its key), and the declared CEL type of each
    name its reads resolve against, by placeholder name (``s0.output.value``)."""

    skeleton: str
    reads: tuple[Any, ...]
    declared_types: dict[str, Any]

    @property
    def key(self) -> tuple[str, tuple[Any, ...]]:
        return self.skeleton, self.reads


def scan_expressions(doc: Any, memo: Memo | None = None) -> list[ScannedExpression]:
    """Every expression of the document (``iter_expressions``) with its reads."""
    scans = {} if memo is None else memo.scans
    scanned = []
    for expression in iter_expressions(doc):
        found = scans.get(expression.text)
        if found is None:
            references, plain = _scan(expression.text)
            ids = frozenset(reference.step_id for reference in references)
            found = scans[expression.text] = (references, plain, ids)
        scanned.append(ScannedExpression(expression, *found))
    return scanned


def iter_expressions(doc: Any) -> Iterator[Expression]:
    """Every CEL expression of the document that is a string, in document
    order: step inputs, conditions, loop items and bodies, delay ``until``,
    then workflow outputs."""
    if not isinstance(doc, dict):
        return
    steps = doc.get("steps")
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            if isinstance(step, dict):
                name = id_of(step) or f"steps[{i}]"
                yield from _step_expressions(step, f"/steps/{i}", f"step {name!r}", i, False)
    outputs = doc.get("outputs")
    if isinstance(outputs, dict):
        for key, text in outputs.items():
            if isinstance(text, str):
                yield Expression(
                    text, pointer("outputs", key), "output", f"workflow output {key!r}"
                )


_PARTS: list[tuple[str, str, Role, str]] = [
    ("condition", "expression", "condition", "condition"),
    ("loop", "items", "items", "loop items"),
    ("delay", "until", "until", "delay `until`"),
]


def _step_expressions(
    step: Mapping[str, Any], at: str, name: str, index: int, in_loop: bool
) -> Iterator[Expression]:
    """The expressions of a step at the JSON Pointer ``at``."""
    inputs = step.get("input")
    if isinstance(inputs, dict):
        for key, text in inputs.items():
            if isinstance(text, str):
                yield Expression(
                    text,
                    f"{at}/input{pointer(key)}",
                    "input",
                    f"{name}, input {key!r}",
                    index,
                    in_loop,
                )
    for section, key, role, label in _PARTS:
        spec = step.get(section)
        if isinstance(spec, dict) and isinstance(spec.get(key), str):
            yield Expression(
                spec[key], f"{at}/{section}/{key}", role, f"{name}, {label}", index, in_loop
            )
    loop = step.get("loop")
    body = loop.get("body") if isinstance(loop, dict) else None
    if isinstance(body, dict):
        yield from _step_expressions(body, f"{at}/loop/body", f"{name} (loop body)", index, True)


class _Scope:
    """Declarations and checking environments for one document."""

    def __init__(self, doc: Mapping[str, Any], graph: StepGraph) -> None:
        self._graph = graph
        self._input_schema = doc.get("inputSchema")
        self._inputs = cel.schema_variables("inputs", self._input_schema)
        self._envs: dict[tuple[frozenset[str], bool, bool], Any] = {}
        self._outputs: dict[str, dict[str, Any]] = {}
        self._signatures: dict[str, tuple[str, str]] = {}

    def outputs(self, step_id: str) -> dict[str, Any]:
        """The declarations of ``steps.<step_id>.output``."""
        declared = self._outputs.get(step_id)
        if declared is None:
            step = self._graph.steps[self._graph.index_of[step_id]]
            declared = cel.schema_variables(f"steps.{step_id}.output", step.get("outputSchema"))
            self._outputs[step_id] = declared
        return declared

    @property
    def inputs_signature(self) -> str:
        """What the declarations of ``inputs`` are made from (``repr``: the
        same text is the same value)."""
        return repr(self._input_schema)

    def signature(self, step_id: str) -> tuple[str, str]:
        """What the declarations of ``steps.<step_id>.output`` are made from."""
        found = self._signatures.get(step_id)
        if found is None:
            step = self._graph.steps[self._graph.index_of[step_id]]
            found = self._signatures[step_id] = (step_id, repr(step.get("outputSchema")))
        return found

    def structure(self, text: str) -> Structure | None:
        """What a type-check of ``text`` depends on besides the rest of its
        text: the expression with step ids replaced by their order of
        appearance, and, per read ``steps.<id>.output.<a>.<b>``, the declared
        CEL types of that name and each of its prefixes (the checker resolves
        the longest declared one). Expressions with the same structure check
        the same way. None when ``steps`` appears in any other form."""
        order: dict[str, str] = {}
        reads: list[Any] = []
        declared_types: dict[str, Any] = {}

        def placeholder(match: re.Match[str]) -> str:
            step_id, chain = match.group(1), match.group(2)
            if step_id not in self._graph.index_of:
                raise LookupError(step_id)
            name = order.setdefault(step_id, f"s{len(order)}")
            step = self._graph.steps[self._graph.index_of[step_id]]
            fields = chain.split(".")[1:]
            # what `self.outputs(step_id)` declares for the read and its prefixes
            chain_types = cel.declared_chain(step.get("outputSchema"), fields)
            types = tuple(None if kind is None else kind.name() for kind in chain_types)
            for n, kind in enumerate(chain_types):
                if kind is not None:
                    declared_types[".".join([name, "output", *fields[:n]])] = kind
            reads.append((name, chain, types))
            return f"steps.{name}.output{chain}"

        try:
            skeleton = _OUTPUT_READ.sub(placeholder, text)
        except LookupError:
            return None
        if _STEPS_WORD.search(_OUTPUT_READ.sub("", text)):
            return None
        return Structure(skeleton, tuple(reads), declared_types)

    def check_structures(
        self, structures: Mapping[tuple[Any, ...], Structure], in_loop: bool
    ) -> dict[tuple[Any, ...], cel.Checked | cel.CelIssue]:
        """The check of each structure's skeleton (by key), all in one small
        environment: the declarations of ``inputs``, in a loop body ``item``
        and ``index``, and per structure its reads' declared types, under
        names of its own (``steps.k<n>s<m>.output...``). Each skeleton reads
        only its own names, declared with the types its text's reads have, so
        where it checks, its text checks the same, to the same type, in any
        environment that declares what the text reads (``Structure``); one
        environment makes the checker's first, costly, compile happen once,
        not once per structure, and declares a few names, not every step's."""
        variables = dict(self._inputs)
        if in_loop:
            variables.update(_LOOP_VARIABLES)
        texts: dict[tuple[Any, ...], str] = {}
        for n, (key, structure) in enumerate(structures.items()):
            texts[key] = _OUTPUT_READ.sub(rf"steps.k{n}\1.output\2", structure.skeleton)
            for name, kind in structure.declared_types.items():
                variables[f"steps.k{n}{name}"] = kind
        env = cel.environment(variables)
        return {key: cel.check(env, text) for key, text in texts.items()}

    def env(self, readable: frozenset[str], in_loop: bool, bracket: bool) -> Any:
        """The environment declaring ``inputs``, the outputs of ``readable``
        steps, in a loop body ``item`` and ``index``, and, for bracket reads,
        ``steps`` itself (as a map, so those reads are untyped)."""
        key = (readable, in_loop, bracket)
        if key not in self._envs:
            variables = dict(self._inputs)
            for step_id in sorted(readable):
                variables.update(self.outputs(step_id))
            if in_loop:
                variables.update(_LOOP_VARIABLES)
            if bracket:
                variables["steps"] = cel.T.Map(cel.T.STRING, cel.T.DYN)
            self._envs[key] = cel.environment(variables)
        return self._envs[key]

    def check(
        self, expression: Expression, upstream: frozenset[str], references: list[StepReference]
    ) -> cel.Checked | cel.CelIssue:
        # Declaring only the upstream steps the text mentions keeps environments
        # small and shared; should the scan miss a read (a comment, odd
        # spacing), the whole scope decides.
        mentioned = upstream & {r.step_id for r in references}
        bracket = any(r.bracket for r in references)
        result = cel.check(
            self.env(frozenset(mentioned), expression.in_loop, bracket), expression.text
        )
        if (
            isinstance(result, cel.CelIssue)
            and result.kind == "undeclared"
            and mentioned != upstream
        ):
            match = _STEP_REFERENCE.match(result.reference)
            if match and match.group(1) in upstream:
                full = self.env(upstream, expression.in_loop, bracket)
                result = cel.check(full, expression.text)
        return result


@dataclass
class Memo:
    """Work on expressions shared by the documents of one call (``diff``
    checks two versions of a workflow, which share most expressions), and by
    the repeats of an expression within a document; nothing outlives the call.

    ``scans``: ``_scan`` by text. ``checks``: results of checking plain
    expressions in the shared environment, by everything they depend on: the
    text, whether it is in a loop body, and, when the memo serves several
    documents (``documents``), the declarations of ``inputs`` and of the
    outputs of the steps it reads (the only names it can resolve; within a
    document they are the same for every expression), by the schemas they
    are made from."""

    documents: int = 1
    scans: dict[str, tuple[list[StepReference], bool, frozenset[str]]] = field(default_factory=dict)
    checks: dict[tuple[str, bool, Any, Any], cel.Checked | cel.CelIssue] = field(
        default_factory=dict
    )
    shapes: dict[tuple[Any, ...], cel.Checked] = field(default_factory=dict)
    """Successful checks by ``_Scope.structure`` (with loop flag and inputs)."""


def check_expressions(
    doc: Any,
    graph: StepGraph,
    scanned: list[ScannedExpression] | None = None,
    memo: Memo | None = None,
) -> Iterator[Finding]:
    """Type-checks every expression of the document in its scope
    (``scanned``: ``scan_expressions(doc)``, when the caller has it).

    Each expression is checked with exactly the variables in its scope. As the
    first check in a new checking environment costs far more than the next
    ones, plain expressions (see ``_scan``) whose reads are all upstream are
    first checked in one environment per document that declares every step
    they read: such an expression cannot resolve any other step, so where it
    checks there, it checks the same in its own scope, to the same type.
    Anything else, and every expression that fails there, is checked in its
    own scope, which produces the diagnostics. The same plain expression with
    the same declarations is checked once (``memo``)."""
    if not isinstance(doc, dict):
        return
    if memo is None:
        memo = Memo()
    if scanned is None:
        scanned = scan_expressions(doc, memo)
    scope = _Scope(doc, graph)
    inputs_signature = scope.inputs_signature if memo.documents > 1 else ""
    everything = frozenset(graph.index_of)
    scopes = [_InScope(item.expression, graph, everything) for item in scanned]
    in_shared = [
        item.plain and in_scope.covers(item.step_ids)
        for item, in_scope in zip(scanned, scopes, strict=True)
    ]
    shared = frozenset().union(
        *(item.step_ids for item, plain in zip(scanned, in_shared, strict=True) if plain)
    )
    keys = [
        _check_key(item, scope, memo, inputs_signature) if plain else None
        for item, plain in zip(scanned, in_shared, strict=True)
    ]
    structures = _check_structures(scanned, keys, scope, memo, inputs_signature)
    for item, in_scope, key in zip(scanned, scopes, keys, strict=True):
        expression, references, owner = item.expression, item.references, in_scope.owner
        # Reads of steps out of scope, found in the text: the checker cannot see
        # them behind `steps["id"]`, and reports only the first of several.
        out_of_scope = not in_scope.covers(item.step_ids)
        for reference in references if out_of_scope else ():
            upstream = in_scope.ids
            if reference.step_id not in upstream:
                code, message, hint = _undeclared_step(
                    reference.step_id, ".output", owner, upstream, graph
                )
                if reference.dashed in graph.index_of:
                    message = f"`steps.{reference.dashed}` reads step {reference.step_id!r} minus "
                    message += "a variable; a step id with `-` is not a CEL identifier"
                    hint = f'read it as `steps["{reference.dashed}"].output`'
                yield Finding(
                    code,
                    f"{expression.where}: {message} (column {reference.column})",
                    expression.path,
                    hint=hint,
                    related_steps=tuple(s for s in (owner, reference.step_id) if s),
                )
        result: cel.Checked | cel.CelIssue | None = None
        if key is not None:
            result = _shared_check(
                item,
                scope,
                memo=memo,
                shared=shared,
                key=key,
                structures=structures,
                inputs_signature=inputs_signature,
            )
        if not isinstance(result, cel.Checked):
            result = scope.check(expression, in_scope.ids, references)
        if isinstance(result, cel.CelIssue):
            yield _issue_finding(expression, result, owner, in_scope.ids, graph)
        else:
            yield from _result_type(expression, result)


def _check_key(
    item: ScannedExpression, scope: _Scope, memo: Memo, inputs_signature: str
) -> tuple[Any, ...]:
    """What the shared check of a plain expression depends on (``Memo.checks``)."""
    expression = item.expression
    if memo.documents == 1:
        return (expression.text, expression.in_loop, None, None)
    return (
        expression.text,
        expression.in_loop,
        inputs_signature,
        frozenset(scope.signature(step_id) for step_id in item.step_ids),
    )


def _shape(structure: Structure, in_loop: bool, inputs_signature: str) -> tuple[Any, ...]:
    """The key of ``Memo.shapes``."""
    return ("structure", *structure.key, in_loop, inputs_signature)


def _check_structures(
    scanned: list[ScannedExpression],
    keys: list[tuple[Any, ...] | None],
    scope: _Scope,
    memo: Memo,
    inputs_signature: str,
) -> dict[str, Structure | None]:
    """The structures (``_Scope.structure``, by text) of the plain expressions
    (those with a key) not checked yet; each new one is checked in
    ``_Scope.check_structures``, and its success recorded (``memo.shapes``)."""
    structures: dict[str, Structure | None] = {}
    pending: dict[bool, dict[tuple[Any, ...], Structure]] = {}
    for item, key in zip(scanned, keys, strict=True):
        if key is None or key in memo.checks:
            continue
        text, in_loop = item.expression.text, item.expression.in_loop
        if text not in structures:
            structures[text] = scope.structure(text)
        structure = structures[text]
        if structure is None:
            continue
        shape = _shape(structure, in_loop, inputs_signature)
        if shape not in memo.shapes:
            pending.setdefault(in_loop, {}).setdefault(shape, structure)
    for in_loop, by_shape in pending.items():
        for shape, result in scope.check_structures(by_shape, in_loop).items():
            if isinstance(result, cel.Checked):
                memo.shapes[shape] = result
    return structures


def _shared_check(
    item: ScannedExpression,
    scope: _Scope,
    *,
    memo: Memo,
    shared: frozenset[str],
    key: tuple[Any, ...],
    structures: Mapping[str, Structure | None],
    inputs_signature: str,
) -> cel.Checked | cel.CelIssue:
    """A plain expression checked in the document's shared environment, once
    per text and declarations (``memo.checks``, by ``key``). Expressions alike
    but for step ids, reading fields of the same declared types, check alike:
    a success is reused across them (``memo.shapes``, which
    ``_check_structures`` fills beforehand), never a failure, whose message
    names the steps."""
    expression = item.expression
    result = memo.checks.get(key)
    if result is not None:
        return result
    text = expression.text
    structure = structures[text] if text in structures else scope.structure(text)
    shape = None if structure is None else _shape(structure, expression.in_loop, inputs_signature)
    if shape is not None and (reused := memo.shapes.get(shape)) is not None:
        memo.checks[key] = reused  # the next document with this text skips `structure`
        return reused
    result = memo.checks[key] = cel.check(scope.env(shared, expression.in_loop, False), text)
    if shape is not None and isinstance(result, cel.Checked):
        memo.shapes[shape] = result
    return result


class _InScope:
    """The steps whose output is in an expression's scope: every step its
    step (transitively) needs; every step for workflow outputs."""

    __slots__ = ("_direct", "_everything", "_graph", "_ids", "_step", "owner")

    def __init__(self, expression: Expression, graph: StepGraph, everything: frozenset[str]):
        self._graph, self._everything, self._step = graph, everything, expression.step
        self._ids: frozenset[str] | None = None
        self._direct: frozenset[str] = frozenset()
        self.owner: str | None = None
        if expression.step is not None:
            owner = self.owner = id_of(graph.steps[expression.step])
            if owner is not None and graph.index_of.get(owner) == expression.step:
                self._direct = frozenset(graph.needs[owner]) - {owner}

    @property
    def ids(self) -> frozenset[str]:
        if self._ids is None:
            self._ids = self._compute()
        return self._ids

    def _compute(self) -> frozenset[str]:
        graph, owner = self._graph, self.owner
        if self._step is None:
            return self._everything
        if owner is not None and graph.index_of.get(owner) == self._step:
            return graph.upstream(owner) - {owner}
        # a duplicate or missing id: its own needs still give the scope
        needs = graph.steps[self._step].get("needs")
        return frozenset(graph.closure(needs if isinstance(needs, list) else ()))

    def covers(self, step_ids: frozenset[str]) -> bool:
        """Whether all of ``step_ids`` are in scope (what a step needs
        directly, other than itself, is)."""
        return step_ids <= self._direct or step_ids <= self.ids


def _result_type(expression: Expression, checked: cel.Checked) -> Iterator[Finding]:
    required = _REQUIRED_TYPES.get(expression.role)
    if required is None:
        return
    accepted, meaning = required
    kind = checked.return_type
    if kind == "DYN" or kind.split("<", 1)[0] in accepted:
        return
    yield Finding(
        "TYPE_MISMATCH",
        f"{expression.where}: the expression must evaluate to {meaning}, but its type is {kind}",
        expression.path,
        hint="compare or convert the value, for example `x > 0` or `size(x) > 0`"
        if expression.role == "condition"
        else "",
    )


def _issue_finding(
    expression: Expression,
    issue: cel.CelIssue,
    owner: str | None,
    upstream: frozenset[str],
    graph: StepGraph,
) -> Finding:
    at = f" (column {issue.column})" if issue.column else ""
    where, path = expression.where, expression.path
    if issue.kind == "syntax":
        return Finding(
            "INVALID_EXPRESSION",
            f"{where}: not a valid CEL expression{at}: {issue.message}",
            path,
            hint="CEL syntax: https://github.com/google/cel-spec/blob/master/doc/langdef.md",
        )
    if issue.kind == "type":
        return Finding("TYPE_MISMATCH", f"{where}: {issue.message}{at}", path)
    match = _STEP_REFERENCE.match(issue.reference)
    if match:
        code, message, hint = _undeclared_step(
            match.group(1), match.group(2), owner, upstream, graph
        )
        related = tuple(s for s in (owner, match.group(1)) if s)
        return Finding(code, f"{where}: {message}{at}", path, hint=hint, related_steps=related)
    message, hint = _undeclared_variable(issue.reference, expression.in_loop)
    return Finding("INVALID_EXPRESSION", f"{where}: {message}{at}", path, hint=hint)


def _undeclared_step(
    target: str, rest: str, owner: str | None, upstream: frozenset[str], graph: StepGraph
) -> tuple[str, str, str]:
    """(code, message, hint) for an undeclared ``steps.<target><rest>``."""
    if target not in graph.index_of:
        close = difflib.get_close_matches(target, graph.index_of, n=1)
        hint = f"did you mean `steps.{close[0]}`?" if close else ""
        return "UNKNOWN_STEP_REF", f"reads step {target!r}, but there is no such step", hint
    if target == owner:
        return "UNKNOWN_STEP_REF", "a step cannot read its own output", ""
    if target not in upstream:
        return (
            "UNKNOWN_STEP_REF",
            f"reads step {target!r}, which is not upstream: the step does not "
            "(transitively) need it",
            f"add {target!r} to `needs`",
        )
    return (
        "INVALID_EXPRESSION",
        f"`steps.{target}{rest}` is not readable; a step exposes only `steps.{target}.output`",
        "",
    )


def _undeclared_variable(reference: str, in_loop: bool) -> tuple[str, str]:
    """(message, hint) for an undeclared variable outside ``steps.<id>``."""
    if reference == "steps":
        return (
            "read step outputs as `steps.<id>.output`",
            'read a step whose id has a `-` as `steps["<id>"].output`',
        )
    if reference.split(".", 1)[0] in _LOOP_VARIABLES and not in_loop:
        return f"`{reference}` is only in scope in a loop body", ""
    scope = "`inputs`, `steps.<id>.output`" + (", `item`, `index`" if in_loop else "")
    hint = "did you mean `inputs`?" if reference.split(".", 1)[0] == "input" else ""
    return f"unknown variable `{reference}`; in scope: {scope}", hint
