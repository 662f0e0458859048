"""The values of enum-like request parameters and body fields, as ``Literal`` types.

Invariants: each alias lists exactly the values ``spec/kneo-v1.openapi.yaml`` gives (an
``enum`` or the ``x-known-values`` of the field it names); a test keeps them in step. The
closed ones (``SortOrder`` and the ``*SortBy`` aliases: a spec ``enum``) are also checked at
run time before a request is sent. The open ones (statuses, decisions, spec formats: values the
platform may add) are for editors and type checkers only: a value they do not list is still
sent, so a new one can be passed with ``typing.cast``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = [
    "AuditSortBy",
    "CheckpointSortBy",
    "HumanDecision",
    "HumanTaskSortBy",
    "HumanTaskStatus",
    "RunSortBy",
    "RunStatus",
    "SortOrder",
    "SpecFormat",
    "TraceSortBy",
]

# Closed: the spec declares an `enum`, so any other value is refused before sending.
SortOrder: TypeAlias = Literal["asc", "desc"]
RunSortBy: TypeAlias = Literal["created_at", "updated_at", "status"]
HumanTaskSortBy: TypeAlias = Literal["created_at", "updated_at", "status"]
TraceSortBy: TypeAlias = Literal["timestamp", "sequence"]
CheckpointSortBy: TypeAlias = Literal["sequence", "created_at"]
AuditSortBy: TypeAlias = Literal["timestamp", "event_type"]

# Open: the spec's `x-known-values`; never refused at run time.
RunStatus: TypeAlias = Literal[
    "queued", "running", "paused_human_review", "completed", "failed", "cancelled"
]
HumanTaskStatus: TypeAlias = Literal["pending", "resumed"]
HumanDecision: TypeAlias = Literal["approve", "reject"]
SpecFormat: TypeAlias = Literal["json", "yaml"]
