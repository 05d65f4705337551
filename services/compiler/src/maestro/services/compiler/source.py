"""Parsing workflow source documents (YAML or JSON) with source positions.

Syntax errors carry a 1-based line and column. Parsed documents keep a lazy index
from RFC 6901 JSON Pointers to positions, so every diagnostic can say where in
the file it points.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
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
    is_json: bool = False
    """Whether ``text`` was parsed as JSON."""
    _positions: dict[str, tuple[int, int]] | None = field(default=None, repr=False)
    _json_index: JsonPositions | None = field(default=None, repr=False)

    def item_texts(self, member: str) -> list[str] | None:
        """For JSON, the text of each item of the array that is the member
        ``member`` of the document (``steps``), if it is one; else None."""
        if not self.is_json:
            return None
        if self._json_index is None:
            self._json_index = JsonPositions(self.text)
        return self._json_index.item_texts(member)

    def position(self, json_pointer: str) -> tuple[int, int]:
        """(line, column), 1-based, of the value at ``json_pointer``; (0, 0) if unknown.

        A pointer to a missing member resolves to its nearest existing parent.
        """
        if self._positions is None and self.is_json:
            if self._json_index is None:
                self._json_index = JsonPositions(self.text)
            try:
                return self._json_index.position(json_pointer)
            except UnsupportedJsonError:
                self.is_json = False  # the YAML index below decides from now on
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


class UnsupportedJsonError(Exception):
    """``JsonPositions`` cannot vouch for agreeing with the YAML index here."""


# What makes libyaml read a JSON text differently from JSON, or not at all (so
# that the YAML index is empty): a character YAML does not allow or counts as
# a line break besides \n (\r, \x85, \u2028, \u2029; in ASCII text that JSON
# accepts, only \r and \x7f can occur), an escaped UTF-16 surrogate, and keys
# libyaml cannot take as keys: over 1,024 characters up to the colon (here: 150
# in the key or before the colon), or with the colon on a later line. Key checks
# run on the reversed text, where each starts at a colon; a key with an escaped
# quote is left to YAML.
_YAML_UNSAFE_CHARACTER = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_REVERSED_ODD_KEY = re.compile(
    r""":(?:[ \t]*"(?:[^"\n]{150}|[^"\n]*"\\)|[ \t]{150}|[ \t\n]*\n[ \t\n]*")"""
)
_REVERSED_ODD_UNESCAPED_KEY = re.compile(
    r""":(?:[ \t]*"[^"\n]{150}|[ \t]{150}|[ \t\n]*\n[ \t\n]*")"""
)
"""``_REVERSED_ODD_KEY`` but for its escaped-quote alternative: the same
matches in a text without a backslash before a quote, found in half the time."""
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MEMBER = re.compile(r'"([^"\\]*)"[ \t\n\r]*:[ \t\n\r]*')
_SEPARATOR = re.compile(r"[ \t\n\r]*([,}\]])[ \t\n\r]*")
_NEWLINE = re.compile(r"\n")
_DECODER = json.JSONDecoder()
_scan_value: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The C scanner behind ``raw_decode``: (value, end) of the value at an offset
(StopIteration when there is none)."""


class JsonPositions:
    """Positions in a JSON text, found by walking the text to each pointer
    (each object or array walked once, its members skipped by the C JSON
    scanner), instead of composing the whole text as YAML.

    They are exactly the YAML index's (``_index_positions``): where libyaml
    might read the text differently (the patterns above, a tab around the top
    value, a repeated key on the way), ``position`` raises
    ``UnsupportedJsonError`` and the caller uses the YAML index. Tests check
    the two agree.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._members: dict[str, dict[str, int] | None] = {}
        self._ends: dict[str, dict[str, int]] = {}
        self._line_starts: list[int] | None = None
        self._root: int | None = None

    def item_texts(self, member: str) -> list[str] | None:
        """The text of each item of the array that is the member ``member`` of
        the top value, or None (no such array, or a text this does not walk)."""
        start = _WHITESPACE.match(self._text).end()  # type: ignore[union-attr]
        try:
            top = self._members_at("", start)
        except UnsupportedJsonError:
            return None
        if top is None or member not in top or self._text[top[member]] != "[":
            return None
        prefix = "/" + escape_pointer_token(member)
        items, ends = self._members[prefix], self._ends[prefix]
        return None if items is None else [self._text[items[t] : ends[t]] for t in items]

    def position(self, json_pointer: str) -> tuple[int, int]:
        """(line, column) of the value at ``json_pointer`` or its nearest
        existing parent.

        Raises:
            UnsupportedJsonError: the YAML index decides for this text.
        """
        offset = self._root if self._root is not None else self._check()
        prefix = ""
        for token in json_pointer.split("/")[1:]:
            members = self._members_at(prefix, offset)
            if members is None or token not in members:
                break
            offset = members[token]
            prefix += "/" + token
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _NEWLINE.finditer(self._text))]
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def _check(self) -> int:
        text = self._text
        stripped = text.strip(" \t\n\r")
        start = text.index(stripped[:1]) if stripped else 0
        outside = text[:start] + text[start + len(stripped) :]
        if (
            not stripped
            or "\t" in outside
            or (
                ("\r" in text or "\x7f" in text)
                if text.isascii()
                else _YAML_UNSAFE_CHARACTER.search(text) is not None
            )
            or _ESCAPED_SURROGATE.search(text)
            or _odd_key(text)
        ):
            raise UnsupportedJsonError
        self._root = start
        return start

    def _members_at(self, prefix: str, offset: int) -> dict[str, int] | None:
        """{pointer token: offset} of the members of the value at ``offset``
        (None for a scalar)."""
        if prefix not in self._members:
            try:
                self._walk(prefix, offset)
            except (ValueError, IndexError, StopIteration) as exc:
                raise UnsupportedJsonError from exc
        return self._members[prefix]

    def _walk(self, prefix: str, offset: int) -> int:
        """Records the members of the value at ``offset`` (the value at
        ``prefix``) and returns where it ends. The members of the top value's
        members are recorded too: that walks each of them once, where skipping
        them would decode them once more (``steps`` is most of a document)."""
        text = self._text
        opening = text[offset]
        if opening not in "{[":
            self._members[prefix] = None
            return int(_scan_value(text, offset)[1])
        closing = "}" if opening == "{" else "]"
        members: dict[str, int] = {}
        ends: dict[str, int] = {}
        self._members[prefix], self._ends[prefix] = members, ends
        at = _skip_space(text, offset + 1)
        if text[at] == closing:
            return at + 1
        while True:
            if opening == "{":
                token, at = _member(text, at)
                if token in members:
                    raise UnsupportedJsonError
            else:
                token = str(len(members))
            members[token] = at
            first = text[at]
            if first == '"' and (end := text.find('"', at + 1)) > 0 and "\\" not in text[at:end]:
                at = end + 1  # a string without escapes: up to the next quote
            elif not prefix and first in "{[":
                at = self._walk(f"/{token}", at)
            else:
                at = _scan_value(text, at)[1]
            ends[token] = at
            separator = _SEPARATOR.match(text, at)
            if separator is None:
                raise UnsupportedJsonError
            if separator.group(1) == closing:
                return separator.end()
            at = separator.end()


def _odd_key(text: str) -> bool:
    """Whether ``_REVERSED_ODD_KEY`` matches the reversed text."""
    pattern = _REVERSED_ODD_KEY if '\\"' in text else _REVERSED_ODD_UNESCAPED_KEY
    return pattern.search(text[::-1]) is not None


def _member(text: str, at: int) -> tuple[str, int]:
    """(pointer token, offset of the value) of the object member at ``at``."""
    member = _MEMBER.match(text, at)  # `"key" :` and the spaces after
    if member is not None:
        token = member.group(1)
        return escape_pointer_token(token) if "~" in token or "/" in token else token, member.end()
    if text[at] != '"':
        raise UnsupportedJsonError
    key, end = _DECODER.raw_decode(text, at)  # a key with an escape
    at = _skip_space(text, end)
    if text[at] != ":":
        raise UnsupportedJsonError
    return escape_pointer_token(key), _skip_space(text, at + 1)


def _skip_space(text: str, at: int) -> int:
    if text[at] not in " \t\n\r":
        return at
    return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]


def detect_json(text: str) -> bool:
    """Whether an unlabelled document is JSON (starts with ``{``)."""
    return text.lstrip().startswith("{")


_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", bytes(10))
_LONG_NUMBER = bytes(19)
"""19 digits in a row: a number orjson may read differently (it reads
integers beyond 64 bits as floats)."""


def _load_json(content: bytes, text: str) -> Any:
    """``json.loads(text)``, through orjson (C, ~1.5x faster on a workflow)
    where the two read the same: a text without a run of 19 digits (orjson
    reads integers beyond 64 bits as floats), and that orjson accepts (it
    refuses what only the standard library reads, ``NaN``, ``Infinity`` and
    escaped lone surrogates, and every malformed text, whose error then comes
    from ``json``). Tests check the two agree.

    Raises:
        json.JSONDecodeError: as ``json.loads``.
    """
    if type(content) is bytes and _LONG_NUMBER not in content.translate(_DIGITS_TO_NUL):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass  # json decides: its value or its error
    return json.loads(text)


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
            document = _load_json(content, text)
        except json.JSONDecodeError as exc:
            raise SourceSyntaxError(exc.msg, exc.lineno, exc.colno, filename) from exc
        # JSON values are JSON-compatible already.
        return ParsedSource(document, text, filename, is_json=True)
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
