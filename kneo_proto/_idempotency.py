"""Idempotency keys: one per logical POST, the same on every attempt.

Invariants: auto keys are UUID4 from the operating system's randomness (``uuid4_text``), so
``random.seed`` in user code cannot make two processes collide. A caller's key is sent byte
for byte once it passes ``validate_idempotency_key``.
"""

from __future__ import annotations

from kneo_proto._errors import KneoUsageError
from kneo_proto._headers import check_header_value
from kneo_proto._uuid4 import uuid4_text

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "MAX_KEY_LENGTH",
    "new_idempotency_key",
    "validate_idempotency_key",
]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 256


def new_idempotency_key() -> str:
    """Return a fresh UUID4-based idempotency key as a string."""
    return uuid4_text()


def validate_idempotency_key(key: str) -> None:
    """Validate a caller-supplied key.

    Raises:
        KneoUsageError: (a ``ValueError``) if ``key`` is empty, longer than
            ``MAX_KEY_LENGTH``, or holds a character that cannot go in a header.
    """
    if not isinstance(key, str) or not key:
        raise KneoUsageError("idempotency key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise KneoUsageError(
            f"idempotency key is {len(key)} characters long; the platform allows {MAX_KEY_LENGTH}"
        )
    check_header_value(IDEMPOTENCY_KEY_HEADER, key)
