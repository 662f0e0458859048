"""A parser for the documented YAML subset of spec text, recording positions.

The subset covers what a spec needs: block mappings and sequences (including ``- key:
value`` items), plain, single- and double-quoted scalars, ``|``/``>`` block scalars, flow
sequences of scalars (``[a, b]``), ``{}``, ``#`` comments and a leading ``---``. Anchors,
aliases, tags, flow mappings, multi-line plain scalars and multiple documents are refused
with a syntax error rather than misread; a plain value containing ``": "`` is refused as
YAML itself does, so a spec this parser accepts means the same to any YAML 1.2 parser.

Invariants: indentation is spaces only; duplicate keys are errors; every node carries the
1-based line and column where its text starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kneo_client.testing._spec_nodes import MAX_DEPTH, Node, SpecSyntaxError

__all__ = ["parse_yaml"]


def parse_yaml(text: str) -> Node:
    """Parse ``text`` written in the YAML subset.

    Raises:
        SpecSyntaxError: where the text leaves the subset.
    """
    return _YamlParser(text).parse()


_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?")
_BLOCK_INDICATORS = frozenset({"|", "|-", "|+", ">", ">-", ">+"})
_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~", ""), None),
}
_UNSUPPORTED_STARTS = {
    "&": "anchors",
    "*": "aliases",
    "!": "tags",
    "%": "directives",
    "@": "reserved characters",
    "`": "reserved characters",
}


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    indent: int  # 0-based column of the first character of ``text``
    text: str

    @property
    def is_item(self) -> bool:
        return self.text == "-" or self.text.startswith("- ")


def _strip_comment(text: str) -> str:
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote and (quote == "'" or text[index - 1] != "\\"):
                quote = ""
        elif char in ("'", '"') and (index == 0 or text[index - 1] in " \t[,:-"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index]
    return text


class _YamlParser:
    """An indentation-driven parser for the documented YAML subset."""

    def __init__(self, text: str) -> None:
        self.raw = [line.rstrip("\r") for line in text.split("\n")]
        self.j = 0
        self.override: _Line | None = None
        self.started = False

    def parse(self) -> Node:
        first = self.peek()
        if first is None:
            return Node(None, 1, 1)
        node = self.block(first.indent, 0)
        rest = self.peek()
        if rest is not None:
            raise SpecSyntaxError(
                "unexpected content; check the indentation", rest.number, rest.indent + 1
            )
        return node

    # -- lines --

    def logical(self, index: int) -> _Line | None:
        text = _strip_comment(self.raw[index]).rstrip()
        stripped = text.lstrip(" ")
        if not stripped:
            return None
        indent = len(text) - len(stripped)
        if stripped[0] == "\t":
            raise SpecSyntaxError("tabs cannot indent YAML; use spaces", index + 1, indent + 1)
        if stripped in ("---", "..."):
            if self.started or stripped == "...":
                raise SpecSyntaxError("multiple YAML documents are not supported", index + 1, 1)
            return None
        return _Line(index + 1, indent, stripped)

    def peek(self) -> _Line | None:
        if self.override is not None:
            return self.override
        while self.j < len(self.raw):
            line = self.logical(self.j)
            if line is not None:
                return line
            self.j += 1
        return None

    def advance(self) -> None:
        self.override = None
        self.started = True
        self.j += 1

    # -- blocks --

    def block(self, indent: int, depth: int) -> Node:
        if depth > MAX_DEPTH:
            line = self.peek()
            raise SpecSyntaxError("the spec is nested too deeply", line.number if line else 1, 1)
        line = self.peek()
        assert line is not None  # callers peek first
        if line.is_item:
            return self.sequence(indent, depth)
        if _split_key(line) is None:
            self.advance()
            return _scalar(line.text, line.number, line.indent + 1)
        return self.mapping(indent, depth)

    def mapping(self, indent: int, depth: int) -> Node:
        first = self.peek()
        assert first is not None
        node = Node({}, first.number, first.indent + 1)
        while (line := self.peek()) is not None and line.indent == indent and not line.is_item:
            split = _split_key(line)
            if split is None:
                raise SpecSyntaxError("expected 'key: value'", line.number, line.indent + 1)
            key, rest, rest_column = split
            if key in node.value:
                raise SpecSyntaxError(f"duplicate key {key!r}", line.number, line.indent + 1)
            self.advance()
            node.keys[key] = (line.number, line.indent + 1)
            node.value[key] = self.value(line, indent, rest, rest_column, depth)
        line = self.peek()
        if line is not None and line.indent > indent:
            raise SpecSyntaxError("unexpected indentation", line.number, line.indent + 1)
        return node

    def value(self, line: _Line, indent: int, rest: str, column: int, depth: int) -> Node:
        if rest in _BLOCK_INDICATORS:
            return Node(self.block_scalar(indent, rest), line.number, column)
        if rest:
            return _scalar(rest, line.number, column)
        following = self.peek()
        if following is not None and (
            following.indent > indent or (following.indent == indent and following.is_item)
        ):
            return self.block(following.indent, depth + 1)
        return Node(None, line.number, column)

    def sequence(self, indent: int, depth: int) -> Node:
        first = self.peek()
        assert first is not None
        items: list[Node] = []
        while (line := self.peek()) is not None and line.indent == indent and line.is_item:
            rest = line.text[1:].lstrip(" ")
            column = line.indent + 1 + len(line.text) - len(rest)
            if rest and (rest.startswith("- ") or rest == "-" or _split_key_text(rest)):
                # "- key: value" opens a mapping whose keys line up with "key".
                self.override = _Line(line.number, column - 1, rest)
                items.append(self.block(column - 1, depth + 1))
            else:
                self.advance()
                items.append(self.value(line, indent, rest, column, depth))
        return Node(items, first.number, first.indent + 1)

    def block_scalar(self, indent: int, style: str) -> str:
        collected: list[str] = []
        while self.j < len(self.raw):
            text = self.raw[self.j]
            if text.strip() and len(text) - len(text.lstrip(" ")) <= indent:
                break
            collected.append(text if text.strip() else "")
            self.j += 1
        while collected and not collected[-1]:
            collected.pop()
        if not collected:
            return ""
        base = len(collected[0]) - len(collected[0].lstrip(" "))
        lines = [text[base:] for text in collected]
        joined = "\n".join(lines) if style[0] == "|" else _fold(lines)
        return joined if style.endswith("-") else joined + "\n"


def _fold(lines: list[str]) -> str:
    out = ""
    for index, text in enumerate(lines):
        if index and text and lines[index - 1]:
            out += " "
        out += text if text else "\n"
    return out


def _split_key_text(text: str) -> tuple[str, str, int] | None:
    """Split ``key: rest`` into the key, the rest and the rest's offset, or None."""
    if text[:1] in ('"', "'"):
        key, end = _quoted(text, 1, 1)
        if not text[end:].startswith(":") or text[end + 1 : end + 2] not in ("", " "):
            return None
        after = end + 1
    else:
        if text[:1] in ("[", "{", "#") or text == "-" or text.startswith("- "):
            return None
        match = re.search(r":( |$)", text)
        if match is None or match.start() == 0:
            return None
        key, after = text[: match.start()].rstrip(), match.start() + 1
    rest = text[after:].lstrip(" ")
    return key, rest, len(text) - len(rest)


def _split_key(line: _Line) -> tuple[str, str, int] | None:
    split = _split_key_text(line.text)
    if split is None:
        return None
    key, rest, offset = split
    return key, rest, line.indent + offset + 1


def _quoted(text: str, line: int, column: int) -> tuple[str, int]:
    """Read the quoted scalar at the start of ``text``; return it and the index after it."""
    if text[0] == '"':
        try:
            value, end = json.decoder.scanstring(text, 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            raise SpecSyntaxError(exc.msg, line, column + exc.pos) from None
        return str(value), int(end)
    index, out = 1, ""
    while index < len(text):
        if text[index] == "'":
            if text[index + 1 : index + 2] == "'":
                out, index = out + "'", index + 2
                continue
            return out, index + 1
        out, index = out + text[index], index + 1
    raise SpecSyntaxError("unterminated single-quoted string", line, column)


def _scalar(text: str, line: int, column: int) -> Node:
    first = text[:1]
    if first in ('"', "'"):
        value, end = _quoted(text, line, column)
        if text[end:].strip():
            raise SpecSyntaxError("unexpected text after the quoted string", line, column + end)
        return Node(value, line, column)
    if first == "[":
        return _flow_sequence(text, line, column)
    if first == "{":
        if text.replace(" ", "") != "{}":
            raise SpecSyntaxError(
                "flow mappings are not supported; use a block mapping", line, column
            )
        return Node({}, line, column)
    if first in _UNSUPPORTED_STARTS:
        raise SpecSyntaxError(f"YAML {_UNSUPPORTED_STARTS[first]} are not supported", line, column)
    if ": " in text:
        raise SpecSyntaxError("a plain value cannot contain ': '; quote it", line, column)
    if text in _CONSTANTS:
        return Node(_CONSTANTS[text], line, column)
    if _INT.fullmatch(text):
        return Node(int(text), line, column)
    if _FLOAT.fullmatch(text):
        return Node(float(text), line, column)
    return Node(text, line, column)


def _flow_sequence(text: str, line: int, column: int) -> Node:
    if not text.endswith("]"):
        raise SpecSyntaxError("unterminated flow sequence; expected ']'", line, column + len(text))
    items: list[Node] = []
    inner, start, quote = text[1:-1], 0, ""
    for index, char in enumerate(inner + ","):
        if quote:
            quote = "" if char == quote else quote
        elif char in ('"', "'"):
            quote = char
        elif char in "[]{}":
            raise SpecSyntaxError(
                "nested flow collections are not supported", line, column + 1 + index
            )
        elif char == ",":
            item = inner[start:index]
            if item.strip():
                offset = len(item) - len(item.lstrip(" "))
                items.append(_scalar(item.strip(), line, column + 1 + start + offset))
            elif index < len(inner):
                raise SpecSyntaxError("empty item in a flow sequence", line, column + 1 + index)
            start = index + 1
    return Node(items, line, column)
