"""The emulator's agent-spec format: fields, checks with located diagnostics, and samples.

A spec is a mapping with a ``name``, an optional ``description`` and ``environment``, and a
list of ``steps``; each step has a ``name`` and a ``kind`` (``tool``, ``model``,
``human_review`` or ``fail``) plus the fields of that kind (docs/emulator.md, "Spec format").

Invariants: ``analyze`` never raises on bad input; every problem becomes a ``Diagnostic``
with a code, a severity and the 1-based line and column of the offending key or value, and
a spec is returned only when no diagnostic is an error. A spec's ID is its ``name``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kneo_client.testing._spec_json import parse_json
from kneo_client.testing._spec_nodes import Node, SpecSyntaxError, detect_format, plain
from kneo_client.testing._spec_yaml import parse_yaml
from kneo_proto.models import Diagnostic

__all__ = [
    "KINDS",
    "AgentSpec",
    "Analysis",
    "Step",
    "analyze",
    "describe",
    "error",
    "failure_message",
    "review_prompt",
    "summarize",
]

KINDS = ("tool", "model", "human_review", "fail")
FORMATS = ("json", "yaml")
MAX_STEPS = 100
MAX_STEP_SECONDS = 86_400
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TOP_FIELDS = frozenset({"name", "description", "environment", "steps"})
_KIND_FIELDS: Mapping[str, frozenset[str]] = {
    "tool": frozenset({"tool"}),
    "model": frozenset({"model", "prompt"}),
    "human_review": frozenset({"prompt"}),
    "fail": frozenset({"message"}),
}
_COMMON_STEP_FIELDS = frozenset({"name", "kind", "seconds", "output", "description"})
_ANY_KIND_FIELDS = frozenset().union(*_KIND_FIELDS.values())


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a spec."""

    name: str
    kind: str
    tool: str | None = None
    model: str | None = None
    prompt: str | None = None
    message: str | None = None
    seconds: float | None = None
    output: Any = None
    description: str | None = None
    line: int = 1
    column: int = 1


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """A checked spec: what a run executes."""

    name: str
    steps: tuple[Step, ...]
    description: str | None = None
    environment: str | None = None
    source_format: str = "yaml"
    digest: str = ""
    name_at: tuple[int, int] = (1, 1)

    @property
    def tools(self) -> tuple[str, ...]:
        """Every tool the spec calls, in order, without repeats."""
        return tuple(dict.fromkeys(s.tool for s in self.steps if s.tool is not None))

    @property
    def reviews(self) -> bool:
        """Whether the spec pauses for human review."""
        return any(s.kind == "human_review" for s in self.steps)

    def compiled(self, default_seconds: float) -> dict[str, Any]:
        """Return the runtime representation ``specs.compile`` reports."""
        steps = []
        for step in self.steps:
            entry: dict[str, Any] = {"name": step.name, "kind": step.kind}
            for key in ("tool", "model", "prompt", "message", "output"):
                if getattr(step, key) is not None:
                    entry[key] = getattr(step, key)
            entry["seconds"] = step.seconds or default_seconds
            steps.append(entry)
        return {
            "spec_id": self.name,
            "name": self.name,
            "description": self.description,
            "environment": self.environment,
            "format": self.source_format,
            "digest": self.digest,
            "steps": steps,
            "tools": list(self.tools),
            "requires_human_review": self.reviews,
        }


@dataclass(frozen=True, slots=True)
class Analysis:
    """The result of reading a spec: the spec when it has no errors, and every finding."""

    spec: AgentSpec | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        """Whether no diagnostic is an error."""
        return self.spec is not None


def error(code: str, message: str, line: int = 1, column: int = 1) -> Diagnostic:
    """Return an error diagnostic at ``line`` and ``column``."""
    return Diagnostic(severity="error", code=code, message=message, line=line, column=column)


def _warning(code: str, message: str, line: int, column: int) -> Diagnostic:
    return Diagnostic(severity="warning", code=code, message=message, line=line, column=column)


class _Checker:
    """Walks the parsed spec once, collecting diagnostics."""

    def __init__(self) -> None:
        self.found: list[Diagnostic] = []

    def fail(self, code: str, message: str, at: Node | tuple[int, int]) -> None:
        line, column = (at.line, at.column) if isinstance(at, Node) else at
        self.found.append(error(code, message, line, column))

    def text(self, parent: Node, key: str, *, required: bool = False) -> str | None:
        node = parent.value.get(key)
        if node is None or node.value is None:
            if required:
                self.fail("missing_field", f"missing required field {key!r}", parent)
            return None
        if not isinstance(node.value, str) or not node.value:
            self.fail("wrong_type", f"{key!r} must be a non-empty string", node)
            return None
        return str(node.value)

    def name(self, parent: Node, what: str) -> str | None:
        value = self.text(parent, "name", required=True)
        if value is not None and _NAME.fullmatch(value) is None:
            self.fail(
                "invalid_name",
                f"{what} name {value!r} must be lower case letters, digits, '.', '_' or '-'",
                parent.value["name"],
            )
            return None
        return value

    def unknown(self, node: Node, allowed: frozenset[str], what: str) -> None:
        for key, where in node.keys.items():
            if key not in allowed:
                self.found.append(
                    _warning("unknown_field", f"unknown field {key!r} in {what}; ignored", *where)
                )

    def seconds(self, step: Node) -> float | None:
        node = step.value.get("seconds")
        if node is None:
            return None
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail("wrong_type", "'seconds' must be a number", node)
            return None
        if not 0 < value <= MAX_STEP_SECONDS:
            self.fail("out_of_range", f"'seconds' must be > 0 and <= {MAX_STEP_SECONDS}", node)
            return None
        return float(value)

    def step(self, node: Node) -> Step | None:
        if not isinstance(node.value, dict):
            self.fail("wrong_type", "a step must be a mapping", node)
            return None
        before = len(self.found)
        name = self.name(node, "step")
        kind = self.text(node, "kind", required=True)
        if kind is not None and kind not in KINDS:
            message = f"kind must be one of {', '.join(KINDS)}, not {kind!r}"
            self.fail("unknown_kind", message, node.value["kind"])
            kind = None
        allowed = _COMMON_STEP_FIELDS | (_KIND_FIELDS[kind] if kind else _ANY_KIND_FIELDS)
        self.unknown(node, allowed, f"step {name or '?'}")
        tool = self.text(node, "tool", required=kind == "tool")
        fields = {
            "model": self.text(node, "model"),
            "prompt": self.text(node, "prompt"),
            "message": self.text(node, "message"),
            "description": self.text(node, "description"),
        }
        seconds = self.seconds(node)
        output = node.value.get("output")
        failed = any(d.severity == "error" for d in self.found[before:])
        if failed or name is None or kind is None:
            return None
        return Step(
            name=name,
            kind=kind,
            tool=tool,
            seconds=seconds,
            output=plain(output) if output is not None else None,
            line=node.line,
            column=node.column,
            **fields,
        )

    def steps(self, root: Node) -> tuple[Step, ...]:
        node = root.value.get("steps")
        if node is None:
            self.fail("missing_field", "missing required field 'steps'", root)
            return ()
        if not isinstance(node.value, list) or not node.value:
            self.fail("empty_steps", "'steps' must be a non-empty list of steps", node)
            return ()
        if len(node.value) > MAX_STEPS:
            self.fail("too_many_steps", f"a spec has at most {MAX_STEPS} steps", node)
        steps = [s for s in (self.step(item) for item in node.value) if s is not None]
        seen: set[str] = set()
        failed_before: Step | None = None
        for step in steps:
            if step.name in seen:
                where = (step.line, step.column)
                self.fail("duplicate_step", f"step name {step.name!r} is used twice", where)
            if failed_before is not None:
                message = f"step {step.name!r} follows fail step {failed_before.name!r}"
                self.found.append(_warning("unreachable_step", message, step.line, step.column))
            seen.add(step.name)
            failed_before = failed_before or (step if step.kind == "fail" else None)
        return tuple(steps)


def analyze(text: str, fmt: str | None = None) -> Analysis:
    """Parse and check spec ``text`` written in ``fmt`` (detected when None)."""
    if fmt is not None and fmt not in FORMATS:
        message = f"format must be json or yaml, not {fmt!r}"
        return Analysis(None, [error("unknown_format", message)])
    chosen = fmt or detect_format(text)
    try:
        root = parse_json(text) if chosen == "json" else parse_yaml(text)
    except SpecSyntaxError as exc:
        message = f"{chosen} syntax: {exc.message}"
        return Analysis(None, [error("syntax_error", message, exc.line, exc.column)])
    if not isinstance(root.value, dict):
        message = "a spec must be a mapping with name and steps"
        return Analysis(None, [error("wrong_type", message, root.line, root.column)])
    checker = _Checker()
    checker.unknown(root, _TOP_FIELDS, "the spec")
    name = checker.name(root, "spec")
    description = checker.text(root, "description")
    environment = checker.text(root, "environment")
    steps = checker.steps(root)
    if any(d.severity == "error" for d in checker.found) or name is None:
        return Analysis(None, checker.found)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    where = root.value["name"]
    spec = AgentSpec(
        name, steps, description, environment, chosen, digest, (where.line, where.column)
    )
    return Analysis(spec, checker.found)


def describe(step: Step) -> str:
    """Return one sentence saying what ``step`` does."""
    if step.description:
        return step.description
    if step.kind == "tool":
        return f"Calls the tool {step.tool}."
    if step.kind == "model":
        asked = f": {step.prompt}" if step.prompt else "."
        return f"Asks the model {step.model or 'default'}{asked}"
    if step.kind == "human_review":
        return f"Pauses the run until a reviewer decides: {review_prompt(step)}"
    return f"Fails the run: {failure_message(step)}"


def review_prompt(step: Step) -> str:
    """Return what a human_review step asks the reviewer."""
    return step.prompt or f"Approve step {step.name!r}?"


def failure_message(step: Step) -> str:
    """Return why a fail step fails the run."""
    return step.message or f"step {step.name!r} failed"


def summarize(spec: AgentSpec) -> str:
    """Return a one-paragraph summary of ``spec``."""
    counts = {kind: sum(s.kind == kind for s in spec.steps) for kind in KINDS}
    parts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items() if n)
    total = len(spec.steps)
    text = f"{spec.name}: {spec.description + ' ' if spec.description else ''}"
    text += f"{total} step{'' if total == 1 else 's'} ({parts})."
    if spec.tools:
        text += f" Tools: {', '.join(spec.tools)}."
    if spec.reviews:
        text += " Pauses for human review."
    if counts["fail"]:
        text += " Ends in failure by design."
    return text
