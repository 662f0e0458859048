"""Models of human tasks: the review pause points of runs, and the decisions that resume them.

Invariants: task statuses and decisions are open ``str`` values; the constants below name the
values known at platform API 0.4.0.
"""

from __future__ import annotations

import datetime
from typing import Any

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType
from kneo_proto.models.common import ListPage

__all__ = [
    "HUMAN_DECISION_APPROVE",
    "HUMAN_DECISION_REJECT",
    "HUMAN_TASK_STATUS_PENDING",
    "HUMAN_TASK_STATUS_RESUMED",
    "KNOWN_HUMAN_DECISIONS",
    "KNOWN_HUMAN_TASK_STATUSES",
    "HumanResumeRequest",
    "HumanResumeResponse",
    "HumanTaskListResponse",
    "HumanTaskResponse",
]

HUMAN_TASK_STATUS_PENDING = "pending"
HUMAN_TASK_STATUS_RESUMED = "resumed"
KNOWN_HUMAN_TASK_STATUSES = frozenset({HUMAN_TASK_STATUS_PENDING, HUMAN_TASK_STATUS_RESUMED})

HUMAN_DECISION_APPROVE = "approve"
HUMAN_DECISION_REJECT = "reject"
KNOWN_HUMAN_DECISIONS = frozenset({HUMAN_DECISION_APPROVE, HUMAN_DECISION_REJECT})


class HumanTaskResponse(KneoModel, frozen=True, kw_only=True):
    """A human review pause point of a run, identified by its ``continuation_id``."""

    continuation_id: str
    run_id: str
    status: str
    prompt: Expected[str] = UNSET
    created_at: Expected[datetime.datetime] = UNSET
    updated_at: Expected[datetime.datetime] = UNSET
    decision: str | UnsetType | None = UNSET


class HumanTaskListResponse(ListPage, frozen=True, kw_only=True):
    """One page of human tasks."""

    tasks: list[HumanTaskResponse]


class HumanResumeRequest(KneoModel, frozen=True, kw_only=True):
    """A reviewer's decision on a human task (see ``KNOWN_HUMAN_DECISIONS``)."""

    decision: str
    comment: str | UnsetType = UNSET
    # Omitted: the platform records the authenticated principal.
    reviewer: str | UnsetType = UNSET
    data: dict[str, Any] | UnsetType = UNSET


class HumanResumeResponse(KneoModel, frozen=True, kw_only=True):
    """A human task after its decision was recorded."""

    continuation_id: str
    run_id: str
    status: str
    decision: Expected[str] = UNSET
