"""A JSON parser (RFC 8259) for spec text that records the line and column of every value.

Invariants: it accepts exactly RFC 8259 JSON (strings through the standard library's own
scanner); duplicate keys and nesting deeper than ``MAX_DEPTH`` are syntax errors.
"""

from __future__ import annotations

import bisect
import json
import re

from kneo_client.testing._spec_nodes import MAX_DEPTH, Node, SpecSyntaxError

__all__ = ["parse_json"]


def parse_json(text: str) -> Node:
    """Parse JSON ``text``.

    Raises:
        SpecSyntaxError: where the text stops being JSON.
    """
    return _JsonParser(text).parse()


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class _JsonParser:
    """A recursive-descent JSON parser (RFC 8259) that records positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, pos)
        return line, pos - self._starts[line - 1] + 1

    def error(self, message: str) -> SpecSyntaxError:
        return SpecSyntaxError(message, *self.where(self.pos))

    def parse(self) -> Node:
        node = self.value(0)
        self.skip()
        if self.pos != len(self.text):
            raise self.error("unexpected text after the JSON value")
        return node

    def skip(self) -> None:
        match = _JSON_SPACE.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()

    def expect(self, char: str) -> None:
        self.skip()
        if not self.text.startswith(char, self.pos):
            raise self.error(f"expected {char!r}")
        self.pos += 1

    def value(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.error("the spec is nested too deeply")
        self.skip()
        line, column = self.where(self.pos)
        char = self.text[self.pos : self.pos + 1]
        if char == "{":
            return self.mapping(depth, line, column)
        if char == "[":
            return self.sequence(depth, line, column)
        if char == '"':
            return Node(self.string(), line, column)
        for word, constant in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Node(constant, line, column)
        number = _JSON_NUMBER.match(self.text, self.pos)
        if number is not None:
            self.pos = number.end()
            is_float = number.group(1) or number.group(2)
            return Node(float(number[0]) if is_float else int(number[0]), line, column)
        raise self.error("expected a JSON value" if char else "unexpected end of the spec")

    def string(self) -> str:
        try:
            text, self.pos = json.decoder.scanstring(self.text, self.pos + 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            raise SpecSyntaxError(exc.msg, exc.lineno, exc.colno) from None
        return str(text)

    def mapping(self, depth: int, line: int, column: int) -> Node:
        self.pos += 1
        node = Node({}, line, column)
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return node
        while True:
            self.skip()
            if not self.text.startswith('"', self.pos):
                raise self.error("expected a double-quoted key")
            key_at = self.where(self.pos)
            key = self.string()
            if key in node.value:
                raise SpecSyntaxError(f"duplicate key {key!r}", *key_at)
            self.expect(":")
            node.value[key] = self.value(depth + 1)
            node.keys[key] = key_at
            self.skip()
            if not self.text.startswith(",", self.pos):
                self.expect("}")
                return node
            self.pos += 1

    def sequence(self, depth: int, line: int, column: int) -> Node:
        self.pos += 1
        items: list[Node] = []
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return Node(items, line, column)
        while True:
            items.append(self.value(depth + 1))
            self.skip()
            if not self.text.startswith(",", self.pos):
                self.expect("]")
                return Node(items, line, column)
            self.pos += 1
