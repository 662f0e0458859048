"""Models of the audit log, the platform's canonical record of every mutation.

Invariants: event types are open ``str`` values; the constants below name the values known at
platform API 0.4.0.
"""

from __future__ import annotations

import datetime
from typing import Any

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType
from kneo_proto.models.common import ListPage

__all__ = [
    "AUDIT_EVENT_CREDENTIAL_CREATED",
    "AUDIT_EVENT_CREDENTIAL_ROTATED",
    "AUDIT_EVENT_HUMAN_TASK_RESUMED",
    "AUDIT_EVENT_POLICY_UPDATED",
    "AUDIT_EVENT_RUN_CANCELLED",
    "AUDIT_EVENT_RUN_CONTINUED",
    "AUDIT_EVENT_RUN_CREATED",
    "KNOWN_AUDIT_EVENT_TYPES",
    "AuditEvent",
    "AuditEventListResponse",
]

AUDIT_EVENT_RUN_CREATED = "run.created"
AUDIT_EVENT_RUN_CANCELLED = "run.cancelled"
AUDIT_EVENT_RUN_CONTINUED = "run.continued"
AUDIT_EVENT_HUMAN_TASK_RESUMED = "human_task.resumed"
AUDIT_EVENT_POLICY_UPDATED = "policy.updated"
AUDIT_EVENT_CREDENTIAL_CREATED = "credential.created"
AUDIT_EVENT_CREDENTIAL_ROTATED = "credential.rotated"
KNOWN_AUDIT_EVENT_TYPES = frozenset(
    {
        AUDIT_EVENT_RUN_CREATED,
        AUDIT_EVENT_RUN_CANCELLED,
        AUDIT_EVENT_RUN_CONTINUED,
        AUDIT_EVENT_HUMAN_TASK_RESUMED,
        AUDIT_EVENT_POLICY_UPDATED,
        AUDIT_EVENT_CREDENTIAL_CREATED,
        AUDIT_EVENT_CREDENTIAL_ROTATED,
    }
)


class AuditEvent(KneoModel, frozen=True, kw_only=True):
    """One entry of the audit log (see ``KNOWN_AUDIT_EVENT_TYPES``)."""

    event_id: str
    event_type: str
    timestamp: Expected[datetime.datetime] = UNSET
    principal: Expected[str] = UNSET
    run_id: str | UnsetType | None = UNSET
    request_id: str | UnsetType | None = UNSET
    details: dict[str, Any] | UnsetType | None = UNSET


class AuditEventListResponse(ListPage, frozen=True, kw_only=True):
    """One page of audit events."""

    events: list[AuditEvent]
