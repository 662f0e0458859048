"""Models of runs and what hangs off a run: trace, checkpoints, replay and recovery.

Invariants: run statuses, trace event types, change operations and recovery actions are open
``str`` values; the constants below name the values known at platform API 0.4.0. The policy
report of a run is deliberately not modelled: it is returned as a plain ``dict[str, Any]``.
"""

from __future__ import annotations

import datetime
from typing import Any

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType
from kneo_proto.models.common import ErrorDetail, ListPage

__all__ = [
    "CHANGE_OP_ADD",
    "CHANGE_OP_REMOVE",
    "CHANGE_OP_REPLACE",
    "KNOWN_CHANGE_OPS",
    "KNOWN_RECOVERY_ACTIONS",
    "KNOWN_RUN_STATUSES",
    "KNOWN_TRACE_EVENT_TYPES",
    "RECOVERY_ACTION_CONTINUE",
    "RECOVERY_ACTION_NONE",
    "RECOVERY_ACTION_RESTART",
    "RUN_STATUS_CANCELLED",
    "RUN_STATUS_COMPLETED",
    "RUN_STATUS_FAILED",
    "RUN_STATUS_PAUSED_HUMAN_REVIEW",
    "RUN_STATUS_QUEUED",
    "RUN_STATUS_RUNNING",
    "TERMINAL_RUN_STATUSES",
    "TRACE_EVENT_CHECKPOINT_CREATED",
    "TRACE_EVENT_HUMAN_REVIEW_REQUESTED",
    "TRACE_EVENT_HUMAN_REVIEW_RESUMED",
    "TRACE_EVENT_MIDDLEWARE_DECISION",
    "TRACE_EVENT_MODEL_CALL",
    "TRACE_EVENT_RUN_CANCELLED",
    "TRACE_EVENT_RUN_COMPLETED",
    "TRACE_EVENT_RUN_FAILED",
    "TRACE_EVENT_RUN_STARTED",
    "TRACE_EVENT_STEP_COMPLETED",
    "TRACE_EVENT_STEP_STARTED",
    "TRACE_EVENT_TOOL_CALL",
    "Checkpoint",
    "CheckpointChange",
    "CheckpointDiffResponse",
    "CheckpointListResponse",
    "ReplayStep",
    "RunCreateRequest",
    "RunCreateResponse",
    "RunListResponse",
    "RunRecoveryResponse",
    "RunReplayResponse",
    "RunStatusResponse",
    "TraceEvent",
    "TraceResponse",
]

RUN_STATUS_QUEUED = "queued"
RUN_STATUS_RUNNING = "running"
RUN_STATUS_PAUSED_HUMAN_REVIEW = "paused_human_review"
RUN_STATUS_COMPLETED = "completed"
RUN_STATUS_FAILED = "failed"
RUN_STATUS_CANCELLED = "cancelled"
KNOWN_RUN_STATUSES = frozenset(
    {
        RUN_STATUS_QUEUED,
        RUN_STATUS_RUNNING,
        RUN_STATUS_PAUSED_HUMAN_REVIEW,
        RUN_STATUS_COMPLETED,
        RUN_STATUS_FAILED,
        RUN_STATUS_CANCELLED,
    }
)
# A run in one of these statuses never changes again (the spec's RunStatusResponse.status).
TERMINAL_RUN_STATUSES = frozenset({RUN_STATUS_COMPLETED, RUN_STATUS_FAILED, RUN_STATUS_CANCELLED})

TRACE_EVENT_RUN_STARTED = "run_started"
TRACE_EVENT_RUN_COMPLETED = "run_completed"
TRACE_EVENT_RUN_FAILED = "run_failed"
TRACE_EVENT_RUN_CANCELLED = "run_cancelled"
TRACE_EVENT_STEP_STARTED = "step_started"
TRACE_EVENT_STEP_COMPLETED = "step_completed"
TRACE_EVENT_MODEL_CALL = "model_call"
TRACE_EVENT_TOOL_CALL = "tool_call"
TRACE_EVENT_MIDDLEWARE_DECISION = "middleware_decision"
TRACE_EVENT_CHECKPOINT_CREATED = "checkpoint_created"
TRACE_EVENT_HUMAN_REVIEW_REQUESTED = "human_review_requested"
TRACE_EVENT_HUMAN_REVIEW_RESUMED = "human_review_resumed"
KNOWN_TRACE_EVENT_TYPES = frozenset(
    {
        TRACE_EVENT_RUN_STARTED,
        TRACE_EVENT_RUN_COMPLETED,
        TRACE_EVENT_RUN_FAILED,
        TRACE_EVENT_RUN_CANCELLED,
        TRACE_EVENT_STEP_STARTED,
        TRACE_EVENT_STEP_COMPLETED,
        TRACE_EVENT_MODEL_CALL,
        TRACE_EVENT_TOOL_CALL,
        TRACE_EVENT_MIDDLEWARE_DECISION,
        TRACE_EVENT_CHECKPOINT_CREATED,
        TRACE_EVENT_HUMAN_REVIEW_REQUESTED,
        TRACE_EVENT_HUMAN_REVIEW_RESUMED,
    }
)

CHANGE_OP_ADD = "add"
CHANGE_OP_REMOVE = "remove"
CHANGE_OP_REPLACE = "replace"
KNOWN_CHANGE_OPS = frozenset({CHANGE_OP_ADD, CHANGE_OP_REMOVE, CHANGE_OP_REPLACE})

# "continue" maps to continue_run, "restart" to a new create_run; "none": nothing to recover.
RECOVERY_ACTION_CONTINUE = "continue"
RECOVERY_ACTION_RESTART = "restart"
RECOVERY_ACTION_NONE = "none"
KNOWN_RECOVERY_ACTIONS = frozenset(
    {RECOVERY_ACTION_CONTINUE, RECOVERY_ACTION_RESTART, RECOVERY_ACTION_NONE}
)


class RunCreateRequest(KneoModel, frozen=True, kw_only=True):
    """Body that starts a run: a registered ``spec_id``, or inline ``spec`` text for run_spec."""

    spec_id: str | UnsetType = UNSET
    spec: str | UnsetType = UNSET
    # Omitted: the platform runs in "dev".
    environment: str | UnsetType = UNSET
    inputs: dict[str, Any] | UnsetType = UNSET
    labels: dict[str, str] | UnsetType = UNSET


class RunCreateResponse(KneoModel, frozen=True, kw_only=True):
    """A run the platform accepted (or continued)."""

    run_id: str
    status: str
    created_at: Expected[datetime.datetime] = UNSET
    continuation_id: str | UnsetType | None = UNSET
    spec_id: str | UnsetType | None = UNSET


class RunStatusResponse(KneoModel, frozen=True, kw_only=True):
    """The state of a run; ``continuation_id`` is set while it waits for human review."""

    run_id: str
    spec_id: Expected[str] = UNSET
    status: str
    environment: Expected[str] = UNSET
    created_at: Expected[datetime.datetime] = UNSET
    updated_at: Expected[datetime.datetime] = UNSET
    started_at: datetime.datetime | UnsetType | None = UNSET
    completed_at: datetime.datetime | UnsetType | None = UNSET
    outputs: dict[str, Any] | UnsetType | None = UNSET
    error: ErrorDetail | UnsetType | None = UNSET
    continuation_id: str | UnsetType | None = UNSET


class RunListResponse(ListPage, frozen=True, kw_only=True):
    """One page of runs."""

    runs: list[RunStatusResponse]


class TraceEvent(KneoModel, frozen=True, kw_only=True):
    """One event in a run's trace (see ``KNOWN_TRACE_EVENT_TYPES``)."""

    event_id: str
    run_id: Expected[str] = UNSET
    sequence: Expected[int] = UNSET
    event_type: str
    timestamp: Expected[datetime.datetime] = UNSET
    data: dict[str, Any] | UnsetType | None = UNSET


class TraceResponse(ListPage, frozen=True, kw_only=True):
    """One page of a run's trace."""

    run_id: Expected[str] = UNSET
    events: list[TraceEvent]


class Checkpoint(KneoModel, frozen=True, kw_only=True):
    """A serialized state snapshot of a run."""

    sequence: int
    created_at: Expected[datetime.datetime] = UNSET
    state: Expected[dict[str, Any]] = UNSET
    label: str | UnsetType | None = UNSET


class CheckpointListResponse(ListPage, frozen=True, kw_only=True):
    """One page of a run's checkpoints."""

    run_id: Expected[str] = UNSET
    checkpoints: list[Checkpoint]


class CheckpointChange(KneoModel, frozen=True, kw_only=True):
    """One difference between two checkpoints' state, at a JSON Pointer ``path``."""

    path: str
    op: str
    # Any JSON value; absent for "add" (before) and "remove" (after).
    before: Any | UnsetType | None = UNSET
    after: Any | UnsetType | None = UNSET


class CheckpointDiffResponse(KneoModel, frozen=True, kw_only=True):
    """The differences between two checkpoints of a run."""

    run_id: Expected[str] = UNSET
    from_sequence: Expected[int] = UNSET
    to_sequence: Expected[int] = UNSET
    changes: list[CheckpointChange]


class ReplayStep(KneoModel, frozen=True, kw_only=True):
    """One step of a run's replay."""

    sequence: int
    step: Expected[str] = UNSET
    event_type: Expected[str] = UNSET
    timestamp: Expected[datetime.datetime] = UNSET
    checkpoint_sequence: int | UnsetType | None = UNSET
    data: dict[str, Any] | UnsetType | None = UNSET


class RunReplayResponse(KneoModel, frozen=True, kw_only=True):
    """A deterministic replay view of a run, derived from its checkpoints and trace."""

    run_id: str
    status: str
    steps: list[ReplayStep]


class RunRecoveryResponse(KneoModel, frozen=True, kw_only=True):
    """What of a run can be recovered, and the recommended next action."""

    run_id: str
    recoverable: bool
    recommended_action: str
    last_checkpoint_sequence: int | UnsetType | None = UNSET
    reason: str | UnsetType | None = UNSET
