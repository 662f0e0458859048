"""Request IDs: one ``X-Request-ID`` per logical call; the platform (or a gateway) returns one.

Invariant: every attempt of a call carries the same request ID, and ``X-Kneo-Attempt``
counts the attempts from 1, so the platform's logs tie retries together.
"""

from __future__ import annotations

from kneo_proto._headers import check_header_value
from kneo_proto._uuid4 import uuid4_text

__all__ = ["ATTEMPT_HEADER", "REQUEST_ID_HEADER", "generate_request_id", "validate_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
ATTEMPT_HEADER = "X-Kneo-Attempt"


def generate_request_id() -> str:
    """Return a fresh UUID4-based request ID as a string."""
    return uuid4_text()


def validate_request_id(request_id: str) -> None:
    """Validate a caller-supplied request ID.

    Raises:
        KneoUsageError: if it is empty or holds a character that cannot go in a header.
    """
    check_header_value(REQUEST_ID_HEADER, request_id, allow_empty=False)
