"""Generated workflow definitions for compiler tests and timings."""

from __future__ import annotations

import random
from typing import Any

DURATIONS = ("500ms", "1.5s", "2m", "1h30m", "30s", "0.25s")


def layered_workflow(steps: int = 200, *, seed: int = 0, width: int = 20) -> dict[str, Any]:
    """A valid DAG of ``steps`` task, condition-free steps in layers of ``width``:
    each step needs up to three steps of the layer above and reads one of them."""
    rng = random.Random(seed)
    doc: dict[str, Any] = {
        "name": "generated",
        "description": "generated for tests",
        "tags": ["generated", "bench"],
        "labels": {"classification": "internal"},
        "inputSchema": {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "number"}, "who": {"type": "string"}},
        },
        "outputSchema": {"type": "object", "properties": {"total": {"type": "number"}}},
        "steps": [],
    }
    ids: list[str] = []
    for i in range(steps):
        step_id = f"s{i:04d}"
        layer_start = (i // width) * width
        above = ids[max(0, layer_start - width) : layer_start]
        step: dict[str, Any] = {
            "id": step_id,
            "type": "task",
            "handler": rng.choice(["echo", "http", "team.billing/charge"]),
            "timeout": rng.choice(DURATIONS),
            "config": {"n": i, "url": f"https://svc.internal/{i}", "flags": [i % 2 == 0]},
        }
        if above:
            needs = rng.sample(above, min(len(above), rng.randint(1, 3)))
            step["needs"] = needs
            step["input"] = {"x": f"steps.{needs[0]}.output.x", "amount": "inputs.amount"}
        else:
            step["input"] = {"amount": "inputs.amount"}
        if rng.random() < 0.3:
            step["retry"] = {"maxAttempts": 3, "initialBackoff": "1s"}
        doc["steps"].append(step)
        ids.append(step_id)
    doc["outputs"] = {"total": f"steps.{ids[-1]}.output.x"}
    return doc
