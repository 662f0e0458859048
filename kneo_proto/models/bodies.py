"""The dict forms of the request bodies, as ``TypedDict`` types for editors and type checkers.

Every endpoint that takes a body accepts the model (``RunCreateRequest(...)``) or a plain dict;
these types describe that dict, so mypy and pyright flag an unknown key, a missing required key
or a value of the wrong type in user code. At run time a dict body is checked against its model
before it is sent (``kneo_proto/_request_check.py``), whatever its static type.

Invariants: one ``<Model>Dict`` per request model, with the model's fields (as on the wire),
``total=False`` and ``Required[...]`` exactly where the spec requires a field; a test keeps
them in step with the models and the spec. No ``from __future__ import annotations`` here, so
``__required_keys__`` stays right at run time.
"""

from typing import Any, Required, TypedDict

from kneo_proto.models.choices import HumanDecision, SpecFormat

__all__ = [
    "EnvironmentPolicyRequestDict",
    "HumanResumeRequestDict",
    "RunCreateRequestDict",
    "SpecCompileRequestDict",
    "SpecExplainRequestDict",
    "SpecPolicyReportRequestDict",
    "SpecValidateRequestDict",
]


class RunCreateRequestDict(TypedDict, total=False):
    """The dict form of ``RunCreateRequest``: ``spec_id`` for create_run, ``spec`` for run_spec."""

    spec_id: str
    spec: str
    environment: str
    inputs: dict[str, Any]
    labels: dict[str, str]


class HumanResumeRequestDict(TypedDict, total=False):
    """The dict form of ``HumanResumeRequest`` (``decision``: see ``HumanDecision``)."""

    decision: Required[HumanDecision]
    comment: str
    reviewer: str
    data: dict[str, Any]


class EnvironmentPolicyRequestDict(TypedDict, total=False):
    """The dict form of ``EnvironmentPolicyRequest``; omitted fields take their defaults."""

    allowed_spec_ids: list[str]
    denied_spec_ids: list[str]
    allowed_tools: list[str]
    require_human_review: bool
    max_run_seconds: int


class SpecValidateRequestDict(TypedDict, total=False):
    """The dict form of ``SpecValidateRequest``."""

    spec: Required[str]
    format: SpecFormat
    environment: str


class SpecCompileRequestDict(TypedDict, total=False):
    """The dict form of ``SpecCompileRequest``."""

    spec: Required[str]
    format: SpecFormat
    environment: str


class SpecExplainRequestDict(TypedDict, total=False):
    """The dict form of ``SpecExplainRequest``."""

    spec: Required[str]
    format: SpecFormat
    environment: str


class SpecPolicyReportRequestDict(TypedDict, total=False):
    """The dict form of ``SpecPolicyReportRequest``."""

    spec: Required[str]
    format: SpecFormat
    environment: str
