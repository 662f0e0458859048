"""Idempotency helpers: every POST carries an ``Idempotency-Key``."""

from kneo_proto import (
    IDEMPOTENCY_KEY_HEADER,
    MAX_KEY_LENGTH,
    new_idempotency_key,
    validate_idempotency_key,
)

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "MAX_KEY_LENGTH",
    "new_idempotency_key",
    "validate_idempotency_key",
]
