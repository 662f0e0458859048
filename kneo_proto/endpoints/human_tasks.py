"""Human tasks: the pause points where a run waits for an operator's decision."""

from __future__ import annotations

from kneo_proto._operation import Parts, check_page, endpoint
from kneo_proto._paging import DEFAULT_PAGE_SIZE
from kneo_proto._request_check import check_choice
from kneo_proto.models import (
    HumanResumeRequest,
    HumanResumeRequestDict,
    HumanResumeResponse,
    HumanTaskListResponse,
    HumanTaskResponse,
    HumanTaskSortBy,
    HumanTaskStatus,
    SortOrder,
)

__all__ = ["get_human_task", "list_human_tasks", "resume_human_task"]


@endpoint("GET", "/v1/human-tasks", HumanTaskListResponse, items="tasks")
def list_human_tasks(
    *,
    status: HumanTaskStatus | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    sort_by: HumanTaskSortBy = "created_at",
    sort_order: SortOrder = "desc",
) -> Parts:
    """List pending and recent human tasks. ``GET /v1/human-tasks``.

    Args:
        status: Only tasks in this status (e.g. ``"pending"``). Typed with the statuses
            known today (``HumanTaskStatus``) but open: any other value is sent as given, so
            a status the platform adds later can be filtered with ``typing.cast``.
        limit: Page size, 1 to 1000.
        offset: Index of the first task.
        sort_by: ``"created_at"``, ``"updated_at"`` or ``"status"``.
        sort_order: ``"asc"`` or ``"desc"``.

    Returns:
        HumanTaskListResponse: one page of tasks plus paging fields.

    Raises:
        KneoUsageError: before sending, for a page out of bounds or a ``sort_by`` or
            ``sort_order`` the spec does not list.
    """
    check_page(limit, offset)
    check_choice("sort_by", sort_by, HumanTaskSortBy)
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


@endpoint("GET", "/v1/human-tasks/{continuation_id}", HumanTaskResponse)
def get_human_task(continuation_id: str) -> Parts:
    """Fetch one human task. ``GET /v1/human-tasks/{continuation_id}``.

    Args:
        continuation_id: The task's continuation ID.

    Returns:
        HumanTaskResponse: the task.
    """
    return Parts(path={"continuation_id": continuation_id})


@endpoint(
    "POST", "/v1/human-tasks/{continuation_id}/resume", HumanResumeResponse, body=HumanResumeRequest
)
def resume_human_task(
    continuation_id: str,
    body: HumanResumeRequest | HumanResumeRequestDict,
    *,
    idempotency_key: str | None = None,
) -> Parts:
    """Resume a paused run with a decision. ``POST /v1/human-tasks/{continuation_id}/resume``.

    Args:
        continuation_id: The task's continuation ID.
        body: The decision (``"approve"`` or ``"reject"``, optional comment), as a model or a
            dict (``HumanResumeRequestDict``). ``decision`` is typed with the decisions known
            today (``HumanDecision``) but open: another value is sent as given.
        idempotency_key: Key that makes retries safe; a fresh UUID4 when None.

    Returns:
        HumanResumeResponse: the task after the decision.

    Raises:
        KneoUsageError: before sending, for a dict key the model does not have (with the
            closest field), a missing ``decision``, a value of the wrong type, or an invalid
            model instance.
    """
    return Parts(
        path={"continuation_id": continuation_id}, body=body, idempotency_key=idempotency_key
    )
