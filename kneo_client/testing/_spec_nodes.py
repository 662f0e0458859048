"""What the spec parsers (``_spec_json``, ``_spec_yaml``) produce: positioned nodes.

Invariants: every node knows the 1-based line and column where its text starts, so a
diagnostic can point at the exact key or value; a parser reports bad text by raising
``SpecSyntaxError`` with a line and column inside the text, never by returning a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_DEPTH", "Node", "SpecSyntaxError", "detect_format", "plain"]

MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Node:
    """One value of the spec and where it starts.

    Attributes:
        value: None, bool, int, float, str, ``list[Node]`` or ``dict[str, Node]``.
        line: 1-based line of the value.
        column: 1-based column of the value.
        keys: For a mapping, the line and column of each key.
    """

    value: Any
    line: int
    column: int
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)


class SpecSyntaxError(Exception):
    """The spec text cannot be parsed; ``line`` and ``column`` say where."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = max(1, line)
        self.column = max(1, column)


def plain(node: Node) -> Any:
    """Return ``node`` as plain Python values (dicts, lists, scalars)."""
    if isinstance(node.value, dict):
        return {key: plain(child) for key, child in node.value.items()}
    if isinstance(node.value, list):
        return [plain(child) for child in node.value]
    return node.value


def detect_format(text: str) -> str:
    """Return ``json`` when the text starts with ``{`` or ``[``, else ``yaml``."""
    return "json" if text.lstrip()[:1] in ("{", "[") else "yaml"
