"""The handlers a worker can run: built-ins plus the ``maestro.handlers`` entry points."""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.services.executor.handlers.api import HandlerSource, HandlerSpec

ENTRY_POINT_GROUP = "maestro.handlers"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

log = logging.getLogger("maestro.executor.handlers")


@dataclass(frozen=True, slots=True)
class HandlerPage:
    """One page of :meth:`HandlerRegistry.list_handlers`."""

    items: tuple[HandlerSpec, ...]
    next_page_token: str


class HandlerRegistry:
    """Handlers by name."""

    def __init__(self, specs: Iterable[HandlerSpec] = ()) -> None:
        self._specs: dict[str, HandlerSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: HandlerSpec) -> bool:
        """Registers ``spec``; False (and a log record) when the name is taken:
        the first registration wins, so built-ins win over entry points."""
        existing = self._specs.get(spec.name)
        if existing is not None:
            log.warning(
                "handler %s from %s is ignored: the name is taken by a %s handler",
                spec.name,
                spec.entry_point or spec.source.value,
                existing.source.value,
                extra={"handler": spec.name, "distribution": spec.distribution},
            )
            return False
        self._specs[spec.name] = spec
        return True

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        """Every handler name, sorted."""
        return sorted(self._specs)

    def list_handlers(self, *, page_size: int = 0, page_token: str = "") -> HandlerPage:
        """Handlers sorted by name, a page at a time (AIP-158).

        ``page_size`` 0 means 100 and is capped at 1000; the token is opaque
        (URL-safe base64 of ``{"after": <last name returned>}``).

        Raises:
            InvalidArgumentError: INVALID_ARGUMENT for a negative page size,
                INVALID_PAGE_TOKEN for a token this method did not return.
        """
        if page_size < 0:
            raise InvalidArgumentError(
                f"page_size must not be negative, got {page_size}",
                field_violations=[FieldViolation("page_size", "must be >= 0")],
            )
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token) if page_token else None
        names = [n for n in self.names() if after is None or n > after]
        page = names[:size]
        token = _encode_token(page[-1]) if len(names) > size else ""
        return HandlerPage(tuple(self._specs[n] for n in page), token)


def _encode_token(last_name: str) -> str:
    raw = json.dumps({"after": last_name}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _bad_token() from exc
    name = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name:
        raise _bad_token()
    return name


def _bad_token() -> InvalidArgumentError:
    message = "page_token is malformed: pass next_page_token from a previous response"
    return InvalidArgumentError(
        message,
        reason="INVALID_PAGE_TOKEN",
        field_violations=[FieldViolation("page_token", message)],
    )


def _is_handler(obj: Any) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - an async __call__, not callable()
    )


def _description(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _distribution(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return ""
    return f"{dist.metadata['Name']} {dist.version}"


def spec_from_entry_point(entry_point: metadata.EntryPoint) -> HandlerSpec | None:
    """The handler an entry point names, or None (logged) when it cannot be used:
    import failure, or an object that is neither an async handler nor a
    :class:`HandlerSpec`."""
    origin = {"handler": entry_point.name, "entry_point": entry_point.value}
    try:
        loaded = entry_point.load()
    except Exception:
        log.exception("cannot load handler entry point %s", entry_point.name, extra=origin)
        return None
    if isinstance(loaded, HandlerSpec):
        if loaded.name != entry_point.name:
            log.warning(
                "handler entry point %s names a HandlerSpec called %s; using %s",
                entry_point.name,
                loaded.name,
                entry_point.name,
                extra=origin,
            )
        fn, description, schema = loaded.fn, loaded.description, loaded.config_schema
    else:
        fn, description, schema = loaded, _description(loaded), None
    if not _is_handler(fn):
        log.error(
            "handler entry point %s is not an async handler (async def handler(ctx))",
            entry_point.name,
            extra=origin,
        )
        return None
    return HandlerSpec(
        name=entry_point.name,
        fn=fn,
        description=description or _description(fn),
        config_schema=schema,
        source=HandlerSource.ENTRY_POINT,
        entry_point=entry_point.value,
        distribution=_distribution(entry_point),
    )


def entry_point_handlers(group: str = ENTRY_POINT_GROUP) -> list[HandlerSpec]:
    """The usable handlers of every installed distribution's ``group`` entry points."""
    specs = []
    for entry_point in metadata.entry_points(group=group):
        spec = spec_from_entry_point(entry_point)
        if spec is not None:
            specs.append(spec)
    return specs


def load_handlers(
    builtins: Sequence[HandlerSpec], group: str = ENTRY_POINT_GROUP
) -> HandlerRegistry:
    """A registry of ``builtins`` plus the entry points of ``group``.

    A broken entry point is logged and skipped; on a name clash the built-in
    (then the first entry point found) wins, logged.
    """
    registry = HandlerRegistry(builtins)
    for spec in entry_point_handlers(group):
        registry.add(spec)
    log.info(
        "%d handlers available",
        len(registry),
        extra={"handlers": registry.names()},
    )
    return registry
