"""Runs: create, list, inspect and steer runs (/v1/runs and its 10 sub-resources)."""

from __future__ import annotations

from kneo_proto._operation import Parts, check_page, endpoint
from kneo_proto._paging import DEFAULT_PAGE_SIZE
from kneo_proto._request_check import check_choice
from kneo_proto.models import (
    CheckpointDiffResponse,
    CheckpointListResponse,
    CheckpointSortBy,
    RunCreateRequest,
    RunCreateRequestDict,
    RunCreateResponse,
    RunListResponse,
    RunRecoveryResponse,
    RunReplayResponse,
    RunSortBy,
    RunStatus,
    RunStatusResponse,
    SortOrder,
    TraceResponse,
    TraceSortBy,
)

__all__ = [
    "cancel_run",
    "continue_run",
    "create_run",
    "diff_run_checkpoints",
    "get_run",
    "get_run_policy_report",
    "get_run_recovery",
    "get_run_trace",
    "list_run_checkpoints",
    "list_runs",
    "replay_run",
]


@endpoint("POST", "/v1/runs", RunCreateResponse, body=RunCreateRequest)
def create_run(
    body: RunCreateRequest | RunCreateRequestDict, *, idempotency_key: str | None = None
) -> Parts:
    """Start a new run. ``POST /v1/runs``.

    Args:
        body: The run to create (``spec_id`` and optional inputs), as a model or a dict
            (``RunCreateRequestDict``).
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None. Reusing a key
            with the same body returns the original run instead of creating another.

    Returns:
        RunCreateResponse: the new run's ID and initial status.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a value of the wrong type, or an invalid model instance.
    """
    return Parts(body=body, idempotency_key=idempotency_key)


@endpoint("GET", "/v1/runs", RunListResponse, items="runs")
def list_runs(
    *,
    status: RunStatus | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    sort_by: RunSortBy = "updated_at",
    sort_order: SortOrder = "desc",
) -> Parts:
    """List runs with limit/offset pagination. ``GET /v1/runs``.

    Args:
        status: Only runs in this status (e.g. ``"failed"``). Typed with the statuses known
            today (``RunStatus``) but open: any other value is sent as given, so a status the
            platform adds later can be filtered with ``typing.cast``.
        limit: Page size, 1 to 1000.
        offset: Index of the first run.
        sort_by: ``"updated_at"``, ``"created_at"`` or ``"status"``.
        sort_order: ``"asc"`` or ``"desc"``.

    Returns:
        RunListResponse: one page of runs plus paging fields.

    Raises:
        KneoUsageError: before sending, for a page out of bounds or a ``sort_by`` or
            ``sort_order`` the spec does not list.
    """
    check_page(limit, offset)
    check_choice("sort_by", sort_by, RunSortBy)
    check_choice("sort_order", sort_order, SortOrder)
    return Parts(
        query={
            "status": status,
            "limit": limit,
            "offset": offset,
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
    )


@endpoint("GET", "/v1/runs/{run_id}", RunStatusResponse)
def get_run(run_id: str) -> Parts:
    """Fetch the current status of a run. ``GET /v1/runs/{run_id}``.

    Args:
        run_id: The run's ID.

    Returns:
        RunStatusResponse: the run as it is now.
    """
    return Parts(path={"run_id": run_id})


@endpoint("POST", "/v1/runs/{run_id}/cancel", RunStatusResponse)
def cancel_run(run_id: str, *, idempotency_key: str | None = None) -> Parts:
    """Cooperatively cancel a run. ``POST /v1/runs/{run_id}/cancel``.

    The platform may not honour the cancel if the run is already terminal; the returned
    status reflects the state after the cancel.

    Args:
        run_id: The run's ID.
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        RunStatusResponse: the run after the cancel.
    """
    return Parts(path={"run_id": run_id}, idempotency_key=idempotency_key)


@endpoint("POST", "/v1/runs/{run_id}/continue", RunCreateResponse)
def continue_run(run_id: str, *, idempotency_key: str | None = None) -> Parts:
    """Resume a paused run, typically after its human task was resumed.

    ``POST /v1/runs/{run_id}/continue``.

    Args:
        run_id: The run's ID.
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        RunCreateResponse: the continued run's ID and status.
    """
    return Parts(path={"run_id": run_id}, idempotency_key=idempotency_key)


@endpoint("GET", "/v1/runs/{run_id}/replay", RunReplayResponse)
def replay_run(run_id: str) -> Parts:
    """Fetch a deterministic replay view from the run's checkpoints and trace.

    ``GET /v1/runs/{run_id}/replay``.

    Args:
        run_id: The run's ID.

    Returns:
        RunReplayResponse: the replayed steps.
    """
    return Parts(path={"run_id": run_id})


@endpoint("GET", "/v1/runs/{run_id}/trace", TraceResponse, items="events")
def get_run_trace(
    run_id: str,
    *,
    event_type: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    sort_by: TraceSortBy = "timestamp",
    sort_order: SortOrder = "asc",
) -> Parts:
    """Fetch a run's event trace (tool calls, model calls, middleware decisions).

    ``GET /v1/runs/{run_id}/trace``.

    Args:
        run_id: The run's ID.
        event_type: Only events of this type.
        limit: Page size, 1 to 1000.
        offset: Index of the first event.
        sort_by: ``"timestamp"`` or ``"sequence"``.
        sort_order: ``"asc"`` or ``"desc"``.

    Returns:
        TraceResponse: one page of trace events plus paging fields.

    Raises:
        KneoUsageError: before sending, for a page out of bounds or a ``sort_by`` or
            ``sort_order`` the spec does not list.
    """
    check_page(limit, offset)
    check_choice("sort_by", sort_by, TraceSortBy)
    check_choice("sort_order", sort_order, SortOrder)
    return Parts(
        path={"run_id": run_id},
        query={
            "event_type": event_type,
            "limit": limit,
            "offset": offset,
            "sort_by": sort_by,
            "sort_order": sort_order,
        },
    )


@endpoint("GET", "/v1/runs/{run_id}/checkpoints", CheckpointListResponse, items="checkpoints")
def list_run_checkpoints(
    run_id: str,
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    sort_by: CheckpointSortBy = "sequence",
    sort_order: SortOrder = "asc",
) -> Parts:
    """List a run's serialized state snapshots. ``GET /v1/runs/{run_id}/checkpoints``.

    Args:
        run_id: The run's ID.
        limit: Page size, 1 to 1000.
        offset: Index of the first checkpoint.
        sort_by: ``"sequence"`` or ``"created_at"``.
        sort_order: ``"asc"`` or ``"desc"``.

    Returns:
        CheckpointListResponse: one page of checkpoints plus paging fields.

    Raises:
        KneoUsageError: before sending, for a page out of bounds or a ``sort_by`` or
            ``sort_order`` the spec does not list.
    """
    check_page(limit, offset)
    check_choice("sort_by", sort_by, CheckpointSortBy)
    check_choice("sort_order", sort_order, SortOrder)
    return Parts(
        path={"run_id": run_id},
        query={"limit": limit, "offset": offset, "sort_by": sort_by, "sort_order": sort_order},
    )


@endpoint("GET", "/v1/runs/{run_id}/checkpoints/diff", CheckpointDiffResponse)
def diff_run_checkpoints(
    run_id: str, *, from_sequence: int | None = None, to_sequence: int | None = None
) -> Parts:
    """Diff two of a run's checkpoints. ``GET /v1/runs/{run_id}/checkpoints/diff``.

    Args:
        run_id: The run's ID.
        from_sequence: The older checkpoint (the platform picks one when None).
        to_sequence: The newer checkpoint (the platform picks the latest when None).

    Returns:
        CheckpointDiffResponse: the changes between the two.
    """
    return Parts(
        path={"run_id": run_id},
        query={"from_sequence": from_sequence, "to_sequence": to_sequence},
    )


@endpoint("GET", "/v1/runs/{run_id}/policy-report", dict)
def get_run_policy_report(run_id: str) -> Parts:
    """Fetch the policy outcomes of a run. ``GET /v1/runs/{run_id}/policy-report``.

    The report's schema is intentionally open-ended, so it is returned as plain JSON.

    Args:
        run_id: The run's ID.

    Returns:
        dict[str, Any]: the raw JSON body.
    """
    return Parts(path={"run_id": run_id})


@endpoint("GET", "/v1/runs/{run_id}/recovery", RunRecoveryResponse)
def get_run_recovery(run_id: str) -> Parts:
    """Fetch the recovery context of a failed run. ``GET /v1/runs/{run_id}/recovery``.

    Args:
        run_id: The run's ID.

    Returns:
        RunRecoveryResponse: what can be recovered and the recommended next action.
    """
    return Parts(path={"run_id": run_id})
