"""The step graph of a workflow document: ids, ``needs`` edges and the
algorithms validation and lint run over them (closure, cycles, levels).

Built from documents that may not validate, so it reads only well-typed values
and never raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepGraph:
    """The steps of a document and their ``needs`` edges.

    ``index_of`` maps each step id (any non-empty string; the schema reports
    malformed ones) to the index of its first step; ``needs`` holds, per id,
    the ids it needs that exist.
    """

    steps: list[Any]
    index_of: dict[str, int]
    needs: dict[str, list[str]]
    _upstream: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _levels: list[list[list[str]]] = field(default_factory=list, repr=False, compare=False)

    def levels(self) -> list[list[str]]:
        """``levels(self.needs)``, computed once."""
        if not self._levels:
            self._levels.append(levels(self.needs))
        return self._levels[0]

    def acyclic(self) -> bool:
        """Whether no step is on a cycle (then every step has a level)."""
        return sum(map(len, self.levels())) == len(self.needs)

    def upstream(self, step_id: str) -> frozenset[str]:
        """Every step ``step_id`` transitively needs (itself only on a cycle)."""
        cached = self._upstream.get(step_id)
        if cached is None:
            cached = frozenset(self.closure(self.needs.get(step_id, ())))
            self._upstream[step_id] = cached
        return cached

    def closure(self, start: Iterable[str]) -> set[str]:
        """``start`` (existing ids; anything else is ignored) and everything
        they transitively need."""
        seen: set[str] = set()
        stack = [s for s in start if isinstance(s, str) and s in self.needs]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                cached = self._upstream.get(node)
                if cached is not None:
                    seen |= cached
                else:
                    stack.extend(self.needs[node])
        return seen

    def dependents(self) -> dict[str, list[str]]:
        """The reverse edges: for each id, the ids that need it."""
        reverse: dict[str, list[str]] = {step_id: [] for step_id in self.needs}
        for step_id, needs in self.needs.items():
            for need in needs:
                reverse[need].append(step_id)
        return reverse


def id_of(step: Any) -> str | None:
    """The step's id when it is a non-empty string."""
    value = step.get("id") if isinstance(step, dict) else None
    return value if isinstance(value, str) and value else None


def string_list(value: Any) -> list[str]:
    """The strings of a list (schema errors cover anything else)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def step_graph(doc: Any) -> StepGraph | None:
    """The graph of a document whose ``steps`` is a list; None otherwise."""
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list):
        return None
    index_of: dict[str, int] = {}
    for i, step in enumerate(steps):
        step_id = id_of(step)
        if step_id is not None and step_id not in index_of:
            index_of[step_id] = i
    needs = {
        step_id: list(dict.fromkeys(n for n in string_list(steps[i].get("needs")) if n in index_of))
        for step_id, i in index_of.items()
    }
    return StepGraph(steps, index_of, needs)


def downstream(roots: list[str], dependents: Mapping[str, list[str]]) -> dict[str, str]:
    """Every step at or after ``roots``, mapped to the root it comes from."""
    origin: dict[str, str] = {}
    for root in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            if node not in origin:
                origin[node] = root
                stack.extend(dependents[node])
    return origin


def cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that contains a cycle.

    Each is found by walking from the component's smallest step id along its
    smallest in-component edge until a step repeats, then rotated to start at
    its smallest id, so reports are deterministic.
    """
    components = strongly_connected(graph)
    found: list[list[str]] = []
    for component in components:
        smallest = min(component)
        if len(component) == 1 and smallest not in graph[smallest]:
            continue
        path: list[str] = []
        current = smallest
        while current not in path:
            path.append(current)
            current = min(n for n in graph[current] if n in component)
        cycle = path[path.index(current) :]
        pivot = cycle.index(min(cycle))
        found.append(cycle[pivot:] + cycle[:pivot])
    found.sort()
    return found


def strongly_connected(graph: Mapping[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (a 1,000-step chain must not recurse)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def levels(needs: Mapping[str, list[str]]) -> list[list[str]]:
    """Steps by depth: level 0 needs nothing, level n needs a step of level n-1
    at most. Steps on or after a cycle have no level and are left out."""
    remaining = {node: len(edges) for node, edges in needs.items()}
    dependents: dict[str, list[str]] = {node: [] for node in needs}
    for node, edges in needs.items():
        for need in edges:
            dependents[need].append(node)
    current = sorted(node for node, count in remaining.items() if count == 0)
    found: list[list[str]] = []
    while current:
        found.append(current)
        following: list[str] = []
        for node in current:
            for dependent in dependents[node]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    following.append(dependent)
        current = sorted(following)
    return found
