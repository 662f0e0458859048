"""Response models built from a run's real history: status, trace, checkpoints, diff,
replay, recovery, policy report and human tasks.

Invariants: every view is derived from the run's trace and checkpoints alone, so views never
disagree (a replay step names the checkpoint its trace event produced; recovery starts from
the last checkpoint; the policy report lists the decisions the trace records). Checkpoint
diffs use JSON Pointers (RFC 6901) into the checkpoint state.
"""

from __future__ import annotations

from typing import Any

from kneo_client.testing._clock import to_datetime
from kneo_client.testing._paging import Listing
from kneo_client.testing._runs import CheckpointRecord, HumanTask, Run, TraceRecord
from kneo_proto.models import (
    RECOVERY_ACTION_CONTINUE,
    RECOVERY_ACTION_NONE,
    RECOVERY_ACTION_RESTART,
    RUN_STATUS_CANCELLED,
    RUN_STATUS_COMPLETED,
    RUN_STATUS_FAILED,
    RUN_STATUS_PAUSED_HUMAN_REVIEW,
    UNSET,
    Checkpoint,
    CheckpointChange,
    ErrorDetail,
    HumanTaskResponse,
    ReplayStep,
    RunCreateResponse,
    RunRecoveryResponse,
    RunReplayResponse,
    RunStatusResponse,
    TraceEvent,
    UnsetType,
)

__all__ = [
    "CHECKPOINT_LISTING",
    "RUN_LISTING",
    "TASK_LISTING",
    "TRACE_LISTING",
    "checkpoint_model",
    "create_model",
    "diff_states",
    "policy_report",
    "recovery_model",
    "replay_model",
    "status_model",
    "task_model",
    "trace_model",
]

RUN_LISTING: Listing[Run] = Listing(
    sort_keys={
        "created_at": lambda r: r.created_at,
        "updated_at": lambda r: r.updated_at,
        "status": lambda r: r.status,
    },
    default_sort_by="updated_at",
    default_order="desc",
    filters={"status": lambda r: r.status},
)
TRACE_LISTING: Listing[TraceRecord] = Listing(
    sort_keys={"timestamp": lambda e: e.at, "sequence": lambda e: e.sequence},
    default_sort_by="timestamp",
    default_order="asc",
    filters={"event_type": lambda e: e.event_type},
)
CHECKPOINT_LISTING: Listing[CheckpointRecord] = Listing(
    sort_keys={"sequence": lambda c: c.sequence, "created_at": lambda c: c.at},
    default_sort_by="sequence",
    default_order="asc",
    filters={},
)
TASK_LISTING: Listing[HumanTask] = Listing(
    sort_keys={
        "created_at": lambda t: t.created_at,
        "updated_at": lambda t: t.updated_at,
        "status": lambda t: t.status,
    },
    default_sort_by="created_at",
    default_order="desc",
    filters={"status": lambda t: t.status},
)


def _optional_time(seconds: float | None) -> Any:
    return UNSET if seconds is None else to_datetime(seconds)


def status_model(run: Run) -> RunStatusResponse:
    """Return the run as ``RunStatusResponse``."""
    task = run.open_task
    error: ErrorDetail | UnsetType = UNSET
    if run.error is not None:
        error = ErrorDetail(code=run.error[0], message=run.error[1])
    return RunStatusResponse(
        run_id=run.run_id,
        spec_id=run.spec_id,
        status=run.status,
        environment=run.environment,
        created_at=to_datetime(run.created_at),
        updated_at=to_datetime(run.updated_at),
        started_at=_optional_time(run.started_at),
        completed_at=_optional_time(run.completed_at),
        outputs=dict(run.outputs) if run.status == RUN_STATUS_COMPLETED else UNSET,
        error=error,
        continuation_id=task.continuation_id if task is not None else UNSET,
    )


def create_model(run: Run) -> RunCreateResponse:
    """Return the run as ``RunCreateResponse`` (create, continue and specs.run)."""
    task = run.open_task
    return RunCreateResponse(
        run_id=run.run_id,
        status=run.status,
        created_at=to_datetime(run.created_at),
        continuation_id=task.continuation_id if task is not None else UNSET,
        spec_id=run.spec_id,
    )


def trace_model(run: Run, record: TraceRecord) -> TraceEvent:
    """Return one trace record as ``TraceEvent``."""
    return TraceEvent(
        event_id=f"{run.run_id}-ev-{record.sequence:04d}",
        run_id=run.run_id,
        sequence=record.sequence,
        event_type=record.event_type,
        timestamp=to_datetime(record.at),
        data=record.data,
    )


def checkpoint_model(record: CheckpointRecord) -> Checkpoint:
    """Return one checkpoint record as ``Checkpoint``."""
    return Checkpoint(
        sequence=record.sequence,
        created_at=to_datetime(record.at),
        state=record.state,
        label=record.label,
    )


def task_model(task: HumanTask) -> HumanTaskResponse:
    """Return a human task as ``HumanTaskResponse``."""
    return HumanTaskResponse(
        continuation_id=task.continuation_id,
        run_id=task.run_id,
        status=task.status,
        prompt=task.prompt,
        created_at=to_datetime(task.created_at),
        updated_at=to_datetime(task.updated_at),
        decision=task.decision if task.decision is not None else UNSET,
    )


def replay_model(run: Run) -> RunReplayResponse:
    """Return the replay view: every step-level trace event, in order."""
    steps = [
        ReplayStep(
            sequence=index,
            step=str(record.data["step"]),
            event_type=record.event_type,
            timestamp=to_datetime(record.at),
            checkpoint_sequence=record.checkpoint if record.checkpoint is not None else UNSET,
            data=record.data,
        )
        for index, record in enumerate(r for r in run.trace if "step" in r.data)
    ]
    return RunReplayResponse(run_id=run.run_id, status=run.status, steps=steps)


def recovery_model(run: Run) -> RunRecoveryResponse:
    """Return what of the run can be recovered, and what to do next."""
    last = run.checkpoints[-1].sequence if run.checkpoints else UNSET
    if run.status == RUN_STATUS_FAILED and run.error is not None:
        action, reason = RECOVERY_ACTION_RESTART, f"the run failed ({run.error[0]}): {run.error[1]}"
    elif run.status == RUN_STATUS_CANCELLED:
        action, reason = RECOVERY_ACTION_RESTART, "the run was cancelled"
    elif run.status == RUN_STATUS_PAUSED_HUMAN_REVIEW:
        task = run.open_task
        waiting = task is not None and task.decision is None
        action = RECOVERY_ACTION_CONTINUE
        reason = "waiting for its human task" if waiting else "its human task was resumed"
    elif run.status == RUN_STATUS_COMPLETED:
        action, reason = RECOVERY_ACTION_NONE, "the run completed; nothing to recover"
    else:
        action, reason = RECOVERY_ACTION_NONE, f"the run is {run.status}; nothing to recover yet"
    return RunRecoveryResponse(
        run_id=run.run_id,
        recoverable=action != RECOVERY_ACTION_NONE,
        recommended_action=action,
        last_checkpoint_sequence=last,
        reason=reason,
    )


def policy_report(run: Run) -> dict[str, Any]:
    """Return the run's policy report: the outcomes at creation and the decisions made since."""
    decisions = [
        {**record.data, "sequence": record.sequence, "timestamp": to_datetime(record.at)}
        for record in run.trace
        if record.event_type == "middleware_decision"
    ]
    return {
        "run_id": run.run_id,
        "spec_id": run.spec_id,
        "environment": run.environment,
        "policy_version": run.policy_version,
        "allowed": all(o["allowed"] for o in run.policy_outcomes),
        "outcomes": run.policy_outcomes,
        "decisions": decisions,
        "denied": [d for d in decisions if not d.get("allowed", True)],
    }


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def diff_states(before: Any, after: Any, path: str = "") -> list[CheckpointChange]:
    """Return the changes from ``before`` to ``after`` (objects key by key, arrays by index)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[CheckpointChange] = []
        for key in before:
            if key not in after:
                changes.append(
                    CheckpointChange(path=_pointer(path, key), op="remove", before=before[key])
                )
            else:
                changes.extend(diff_states(before[key], after[key], _pointer(path, key)))
        for key in after:
            if key not in before:
                changes.append(
                    CheckpointChange(path=_pointer(path, key), op="add", after=after[key])
                )
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            where = _pointer(path, index)
            if index >= len(after):
                changes.append(CheckpointChange(path=where, op="remove", before=before[index]))
            elif index >= len(before):
                changes.append(CheckpointChange(path=where, op="add", after=after[index]))
            else:
                changes.extend(diff_states(before[index], after[index], where))
        return changes
    if before == after and type(before) is type(after):
        return []
    return [CheckpointChange(path=path, op="replace", before=before, after=after)]
