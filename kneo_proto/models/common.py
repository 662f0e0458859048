"""Models shared by every resource: the error body, spec diagnostics and the list-page fields.

Invariants: one error shape for every 4xx and 5xx response; open server values (error codes,
severities, sort orders) stay ``str`` and their known values are constants here, so a value
added by the platform never breaks decoding.
"""

from __future__ import annotations

from typing import Any

from kneo_proto.models._base import UNSET, Expected, KneoModel, UnsetType

__all__ = [
    "DIAGNOSTIC_SEVERITY_ERROR",
    "DIAGNOSTIC_SEVERITY_INFO",
    "DIAGNOSTIC_SEVERITY_WARNING",
    "ERROR_CODE_CONFLICT",
    "ERROR_CODE_FORBIDDEN",
    "ERROR_CODE_IDEMPOTENCY_KEY_IN_PROGRESS",
    "ERROR_CODE_IDEMPOTENCY_KEY_MISMATCH",
    "ERROR_CODE_INTERNAL_ERROR",
    "ERROR_CODE_NOT_FOUND",
    "ERROR_CODE_POLICY_DENIED",
    "ERROR_CODE_RATE_LIMITED",
    "ERROR_CODE_UNAUTHORIZED",
    "ERROR_CODE_UNAVAILABLE",
    "ERROR_CODE_VALIDATION_ERROR",
    "KNOWN_DIAGNOSTIC_SEVERITIES",
    "KNOWN_ERROR_CODES",
    "KNOWN_SORT_ORDERS",
    "SORT_ORDER_ASC",
    "SORT_ORDER_DESC",
    "Diagnostic",
    "ErrorDetail",
    "ErrorResponse",
    "ListPage",
]

# The same Idempotency-Key sent with a different payload (409 or 422).
ERROR_CODE_IDEMPOTENCY_KEY_MISMATCH = "idempotency_key_mismatch"
# The original request with the same Idempotency-Key is still being processed (409).
ERROR_CODE_IDEMPOTENCY_KEY_IN_PROGRESS = "idempotency_key_in_progress"
ERROR_CODE_UNAUTHORIZED = "unauthorized"
ERROR_CODE_FORBIDDEN = "forbidden"
ERROR_CODE_NOT_FOUND = "not_found"
ERROR_CODE_CONFLICT = "conflict"
ERROR_CODE_VALIDATION_ERROR = "validation_error"
ERROR_CODE_RATE_LIMITED = "rate_limited"
ERROR_CODE_INTERNAL_ERROR = "internal_error"
ERROR_CODE_UNAVAILABLE = "unavailable"
ERROR_CODE_POLICY_DENIED = "policy_denied"
KNOWN_ERROR_CODES = frozenset(
    {
        ERROR_CODE_IDEMPOTENCY_KEY_MISMATCH,
        ERROR_CODE_IDEMPOTENCY_KEY_IN_PROGRESS,
        ERROR_CODE_UNAUTHORIZED,
        ERROR_CODE_FORBIDDEN,
        ERROR_CODE_NOT_FOUND,
        ERROR_CODE_CONFLICT,
        ERROR_CODE_VALIDATION_ERROR,
        ERROR_CODE_RATE_LIMITED,
        ERROR_CODE_INTERNAL_ERROR,
        ERROR_CODE_UNAVAILABLE,
        ERROR_CODE_POLICY_DENIED,
    }
)

DIAGNOSTIC_SEVERITY_ERROR = "error"
DIAGNOSTIC_SEVERITY_WARNING = "warning"
DIAGNOSTIC_SEVERITY_INFO = "info"
KNOWN_DIAGNOSTIC_SEVERITIES = frozenset(
    {DIAGNOSTIC_SEVERITY_ERROR, DIAGNOSTIC_SEVERITY_WARNING, DIAGNOSTIC_SEVERITY_INFO}
)

SORT_ORDER_ASC = "asc"
SORT_ORDER_DESC = "desc"
KNOWN_SORT_ORDERS = frozenset({SORT_ORDER_ASC, SORT_ORDER_DESC})


class ErrorDetail(KneoModel, frozen=True, kw_only=True):
    """What went wrong: an error code (see ``KNOWN_ERROR_CODES``) and its explanation."""

    code: Expected[str] = UNSET
    message: Expected[str] = UNSET
    request_id: str | UnsetType | None = UNSET
    details: dict[str, Any] | UnsetType | None = UNSET


class ErrorResponse(KneoModel, frozen=True, kw_only=True):
    """The body of every 4xx and 5xx response."""

    error: ErrorDetail


class Diagnostic(KneoModel, frozen=True, kw_only=True):
    """One finding about a spec, located by 1-based line and column when known."""

    severity: Expected[str] = UNSET
    message: str
    code: str | UnsetType | None = UNSET
    line: int | UnsetType | None = UNSET
    column: int | UnsetType | None = UNSET


class ListPage(KneoModel, frozen=True, kw_only=True):
    """The paging fields every list response carries; each subclass adds its items array."""

    count: Expected[int] = UNSET
    total: Expected[int] = UNSET
    limit: Expected[int] = UNSET
    offset: Expected[int] = UNSET
    sort_by: Expected[str] = UNSET
    sort_order: Expected[str] = UNSET
