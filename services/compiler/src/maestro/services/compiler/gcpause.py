"""Automatic garbage collection paused while the compiler works on a document.

One operation on a 200-step document allocates tens of thousands of
short-lived containers (the parsed document, its normal form, the plan...). In
the middle of an operation they are all still referenced, so the collections
their allocation triggers keep moving them to older generations, until a full
collection scans the whole heap: tens of milliseconds, every dozen or so
operations, which is the tail of the compiler's latency. With automatic
collection paused, reference counting frees them when the operation ends and
no collection ever sees them. Nothing else changes: garbage cycles wait for
the next collection, which runs as usual once the pause ends.

The pause is shared: it begins with the first of concurrent or nested
operations and ends with the last, and never enables collection that was off.

A compiler process also raises the youngest generation's threshold
(``tune_collection``, from 700 to ``YOUNG_THRESHOLD``). The collector counts
container allocations minus deallocations; an operation leaves about one
document's work behind in the cache while evicting an older one, several
thousand containers, so with the default threshold every operation ended in
a young collection that scanned the document it had just cached (0.8-1.2 ms
of a 200-step document's ~20 ms). With the higher one, such collections
run only when the live containers really grow, and an evicted document is
freed by reference counting before any collection has scanned it.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

YOUNG_THRESHOLD = 20_000
"""The youngest generation's collection threshold in a compiler process."""

_lock = threading.Lock()
_holders = 0
_disabled = False
"""Whether the current pause turned collection off (it may have been off)."""


def _begin() -> None:
    global _holders, _disabled  # noqa: PLW0603 - process-wide by nature
    with _lock:
        if _holders == 0 and gc.isenabled():
            gc.disable()
            _disabled = True
        _holders += 1


def _end() -> None:
    global _holders, _disabled  # noqa: PLW0603 - process-wide by nature
    with _lock:
        _holders -= 1
        if _holders == 0 and _disabled:
            _disabled = False
            gc.enable()


def collection_paused(operation: Callable[_P, _R]) -> Callable[_P, _R]:
    """``operation`` with automatic garbage collection paused while it runs."""

    @functools.wraps(operation)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        _begin()
        try:
            return operation(*args, **kwargs)
        finally:
            _end()

    return paused


def tune_collection() -> None:
    """Raises the youngest generation's threshold to ``YOUNG_THRESHOLD`` for
    the whole process (a compiler server calls it once); never lowers it."""
    young, middle, oldest = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
