"""Parsing workflow source documents (YAML or JSON) with source positions.

Syntax errors carry a 1-based line and column. Parsed documents keep a lazy index
from RFC 6901 JSON Pointers to positions, so every diagnostic can say where in
the file it points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from maestro.runtime.errors import InvalidArgumentError

MAX_SOURCE_BYTES = 4 * 1024 * 1024

try:  # libyaml's C loader when present: about 10x faster
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python fallback
    _Loader = yaml.SafeLoader


class SourceSyntaxError(InvalidArgumentError):
    """The document is not well-formed YAML/JSON."""

    default_reason = "SOURCE_SYNTAX_ERROR"

    def __init__(self, message: str, line: int = 0, column: int = 0, filename: str = "") -> None:
        where = f"{filename or '<source>'}:{line}:{column}" if line else (filename or "<source>")
        super().__init__(
            f"{where}: {message}",
            metadata={"line": str(line), "column": str(column), "filename": filename},
        )
        self.line, self.column = line, column


def escape_pointer_token(token: str | int) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 JSON Pointer from tokens (``pointer("steps", 2)`` = ``/steps/2``)."""
    return "".join("/" + escape_pointer_token(t) for t in tokens)


def _to_json_compatible(value: Any) -> Any:
    """YAML values as JSON values: timestamps become RFC 3339 strings, keys strings."""
    if isinstance(value, dict):
        return {str(k): _to_json_compatible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json_compatible(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


@dataclass
class ParsedSource:
    """A parsed document and where each of its values stands in the text."""

    document: Any
    text: str
    filename: str = ""
    _positions: dict[str, tuple[int, int]] | None = field(default=None, repr=False)

    def position(self, json_pointer: str) -> tuple[int, int]:
        """(line, column), 1-based, of the value at ``json_pointer``; (0, 0) if unknown.

        A pointer to a missing member resolves to its nearest existing parent.
        """
        if self._positions is None:
            self._positions = _index_positions(self.text)
        probe = json_pointer
        while True:
            if probe in self._positions:
                return self._positions[probe]
            if not probe:
                return (0, 0)
            probe = probe.rsplit("/", 1)[0]


def _index_positions(text: str) -> dict[str, tuple[int, int]]:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return {}
    positions: dict[str, tuple[int, int]] = {}
    stack: list[tuple[str, yaml.Node]] = [("", root)] if root is not None else []
    while stack:
        path, node = stack.pop()
        positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((path + "/" + escape_pointer_token(key.value), value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((f"{path}/{i}", item))
    return positions


def detect_json(text: str) -> bool:
    """Whether an unlabelled document is JSON (starts with ``{``)."""
    return text.lstrip().startswith("{")


def parse_source(
    content: bytes, *, is_json: bool | None = None, filename: str = ""
) -> ParsedSource:
    """Parses a YAML or JSON document.

    Raises:
        SourceSyntaxError: the bytes are not UTF-8, not well-formed, or empty.
        InvalidArgumentError: the document exceeds ``MAX_SOURCE_BYTES``.
    """
    if len(content) > MAX_SOURCE_BYTES:
        raise InvalidArgumentError(
            f"source is {len(content)} bytes; the limit is {MAX_SOURCE_BYTES}",
            metadata={"limit_bytes": str(MAX_SOURCE_BYTES)},
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceSyntaxError(f"source is not UTF-8 ({exc.reason})", filename=filename) from exc
    if not text.strip():
        raise SourceSyntaxError("source is empty", filename=filename)
    if is_json is None:
        is_json = detect_json(text)
    if is_json:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceSyntaxError(exc.msg, exc.lineno, exc.colno, filename) from exc
    else:
        try:
            document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = exc.problem or exc.context or "invalid YAML"
            raise SourceSyntaxError(problem, line, column, filename) from exc
        except yaml.YAMLError as exc:
            raise SourceSyntaxError(str(exc), filename=filename) from exc
    return ParsedSource(_to_json_compatible(document), text, filename)
