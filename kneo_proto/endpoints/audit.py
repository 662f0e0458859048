"""Audit events: the platform's canonical operational log."""

from __future__ import annotations

from kneo_proto._operation import Parts, check_page, endpoint
from kneo_proto._paging import DEFAULT_PAGE_SIZE
from kneo_proto._request_check import check_choice
from kneo_proto.models import AuditEventListResponse, AuditSortBy, SortOrder

__all__ = ["list_audit_events"]


@endpoint("GET", "/v1/audit-events", AuditEventListResponse, items="events")
def list_audit_events(
    *,
    event_type: str | None = None,
    run_id: str | None = None,
    principal: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    sort_by: AuditSortBy = "timestamp",
    sort_order: SortOrder = "desc",
) -> Parts:
    """List audit events, newest first by default. ``GET /v1/audit-events``.

    Every run, human-task, credential and policy mutation produces one event.

    Args:
        event_type: Only events of this type.
        run_id: Only events about this run.
        principal: Only events caused by this principal.
        limit: Page size, 1 to 1000.
        offset: Index of the first event.
        sort_by: ``"timestamp"`` or ``"event_type"``.
        sort_order: ``"asc"`` or ``"desc"``.

    Returns:
        AuditEventListResponse: one page of events plus paging fields.

    Raises:
        KneoUsageError: before sending, for a page out of bounds or a ``sort_by`` or
            ``sort_order`` the spec does not list.
    """
    check_page(limit, offset)
    check_choice("sort_by", sort_by, AuditSortBy)
    check_choice("sort_order", sort_order, SortOrder)
    return Parts(
        query={
            "event_type": event_type,
            "run_id": run_id,
            "principal": principal,
            "limit": limit,
            "offset": offset,
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
    )
