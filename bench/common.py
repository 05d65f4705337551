"""What every benchmark here shares: the percentile, and a probe of the
machine's speed printed with the figures.

The project's machine is a 2-core VM whose speed drifts: the same code, back
to back and with nothing else running (load average ~1, no steal time
reported), took 1.5-2.6x longer in some minutes than in others. A figure is
therefore comparable with another run's only at a similar probe:
``speed_probe()`` times a fixed piece of pure-Python work (dicts, tuples,
strings: what the services' own code does) and each bench prints it at its
start and end.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

PROBE_ROUNDS = 5


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-1) of ``values``; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _probe_work() -> int:
    table: dict[int, tuple[int, str]] = {}
    total = 0
    for i in range(200_000):
        key = i % 1024
        table[key] = (i, str(i))
        total += len(table[key][1])
    return total


def speed_probe() -> float:
    """Milliseconds the fixed probe work takes here now (median of
    ``PROBE_ROUNDS``): lower is a faster machine."""
    samples = []
    for _ in range(PROBE_ROUNDS):
        started = time.perf_counter()
        _probe_work()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def machine_line() -> str:
    """Host, architecture, Python, cores, load average and the speed probe."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}"
        f"  cpus {os.cpu_count()}  load average {load}  speed probe {speed_probe()} ms"
    )
