"""Models of the spec endpoints: validate, compile, explain and policy preview.

Invariants: every request carries the spec text in ``spec`` (JSON or YAML); an invalid spec is a
result with diagnostics, not an error. ``format`` is an open ``str`` (see ``KNOWN_SPEC_FORMATS``).
"""

from __future__ import annotations

from typing import Any

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType
from kneo_proto.models.common import Diagnostic

__all__ = [
    "KNOWN_SPEC_FORMATS",
    "SPEC_FORMAT_JSON",
    "SPEC_FORMAT_YAML",
    "PolicyOutcome",
    "SpecCompileRequest",
    "SpecCompileResponse",
    "SpecExplainRequest",
    "SpecExplainResponse",
    "SpecExplainStep",
    "SpecPolicyReportRequest",
    "SpecPolicyReportResponse",
    "SpecValidateRequest",
    "SpecValidateResponse",
]

SPEC_FORMAT_JSON = "json"
SPEC_FORMAT_YAML = "yaml"
KNOWN_SPEC_FORMATS = frozenset({SPEC_FORMAT_JSON, SPEC_FORMAT_YAML})


class SpecValidateRequest(KneoModel, frozen=True, kw_only=True):
    """A spec to validate; ``format`` is detected when omitted."""

    spec: str
    format: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET


class SpecValidateResponse(KneoModel, frozen=True, kw_only=True):
    """The result of validating a spec."""

    valid: bool
    diagnostics: Expected[list[Diagnostic]] = UNSET


class SpecCompileRequest(KneoModel, frozen=True, kw_only=True):
    """A spec to compile; ``format`` is detected when omitted."""

    spec: str
    format: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET


class SpecCompileResponse(KneoModel, frozen=True, kw_only=True):
    """The result of compiling a spec; ``compiled`` and ``spec_id`` are set when ``ok``."""

    ok: bool
    diagnostics: Expected[list[Diagnostic]] = UNSET
    compiled: dict[str, Any] | UnsetType | None = UNSET
    spec_id: str | UnsetType | None = UNSET


class SpecExplainRequest(KneoModel, frozen=True, kw_only=True):
    """A spec to explain; ``format`` is detected when omitted."""

    spec: str
    format: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET


class SpecExplainStep(KneoModel, frozen=True, kw_only=True):
    """One step of a spec, explained."""

    name: str
    description: Expected[str] = UNSET
    kind: str | UnsetType | None = UNSET


class SpecExplainResponse(KneoModel, frozen=True, kw_only=True):
    """A human-readable explanation of a spec."""

    summary: str
    steps: Expected[list[SpecExplainStep]] = UNSET
    diagnostics: Expected[list[Diagnostic]] = UNSET


class SpecPolicyReportRequest(KneoModel, frozen=True, kw_only=True):
    """A spec whose policy outcomes to preview; ``environment`` defaults to ``dev``."""

    spec: str
    format: str | UnsetType = UNSET
    environment: str | UnsetType = UNSET


class PolicyOutcome(KneoModel, frozen=True, kw_only=True):
    """The verdict of one policy rule on a spec."""

    rule: str
    allowed: bool
    message: str | UnsetType | None = UNSET


class SpecPolicyReportResponse(KneoModel, frozen=True, kw_only=True):
    """The policy outcomes a spec would meet in an environment."""

    environment: Expected[str] = UNSET
    allowed: bool
    outcomes: Expected[list[PolicyOutcome]] = UNSET
    diagnostics: Expected[list[Diagnostic]] = UNSET
