"""The audit log: one event for every mutation of runs, human tasks and policies.

Invariants (spec: AuditEvent): each event records who acted (the principal derived from the
API key), the run it concerns when there is one, and the ``X-Request-ID`` of the request
that caused it; events are never changed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kneo_client.testing._clock import to_datetime
from kneo_client.testing._paging import Listing
from kneo_client.testing._wire import Context
from kneo_proto.models import UNSET, AuditEvent

__all__ = ["AUDIT_LISTING", "AuditLog", "AuditRecord"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event."""

    event_id: str
    event_type: str
    at: float
    principal: str
    request_id: str
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def model(self) -> AuditEvent:
        """Return the event as the spec's ``AuditEvent``."""
        return AuditEvent(
            event_id=self.event_id,
            event_type=self.event_type,
            timestamp=to_datetime(self.at),
            principal=self.principal,
            run_id=self.run_id if self.run_id is not None else UNSET,
            request_id=self.request_id,
            details=self.details,
        )


AUDIT_LISTING: Listing[AuditRecord] = Listing(
    sort_keys={"timestamp": lambda e: e.at, "event_type": lambda e: e.event_type},
    default_sort_by="timestamp",
    default_order="desc",
    filters={
        "event_type": lambda e: e.event_type,
        "run_id": lambda e: e.run_id,
        "principal": lambda e: e.principal,
    },
)


class AuditLog:
    """Every audit event, oldest first."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(
        self,
        event_type: str,
        ctx: Context,
        *,
        run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append an event caused by the request ``ctx``."""
        entry = AuditRecord(
            event_id=f"evt-{len(self.records) + 1:06d}",
            event_type=event_type,
            at=ctx.now,
            principal=ctx.principal,
            request_id=ctx.request_id,
            run_id=run_id,
            details=details or {},
        )
        self.records.append(entry)
        return entry
