"""Header redaction: the one place that decides which header values are secret.

Invariant: a header whose lower-cased name contains any of ``SENSITIVE_HEADER_TOKENS`` never
leaves this module with its value; it is replaced by ``REDACTED``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["REDACTED", "SENSITIVE_HEADER_TOKENS", "is_sensitive_header", "redact_headers"]

REDACTED = "<redacted>"

# The contract's list: substring match, case-insensitive.
SENSITIVE_HEADER_TOKENS = (
    "authorization",
    "x-kneo-api-key",
    "cookie",
    "set-cookie",
    "proxy-authorization",
)


def is_sensitive_header(name: str) -> bool:
    """Return True when the value of header ``name`` must never be shown."""
    lowered = name.lower()
    return any(token in lowered for token in SENSITIVE_HEADER_TOKENS)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``headers`` with every sensitive value replaced by ``REDACTED``.

    Sensitive names are those containing (case-insensitive) ``authorization``,
    ``x-kneo-api-key``, ``cookie``, ``set-cookie`` or ``proxy-authorization``.
    """
    return {
        name: REDACTED if is_sensitive_header(name) else value for name, value in headers.items()
    }
