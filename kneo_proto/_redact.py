"""Header redaction: the one place that decides which header values are secret.

Invariant: a header whose lower-cased name contains any of ``SENSITIVE_HEADER_TOKENS`` never
leaves this module with its value; it is replaced by ``REDACTED``. A URL's password (or its user
name, when that stands alone and so is the credential) never leaves ``redact_url``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADER_TOKENS",
    "is_sensitive_header",
    "redact_headers",
    "redact_url",
]

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


def redact_url(url: str) -> str:
    """Return ``url`` with the credentials of its user info replaced by ``REDACTED``.

    ``http://alice:secret@proxy:3128`` becomes ``http://alice:<redacted>@proxy:3128``; a user
    name without a password (a token) is masked whole. The user info runs to the *last* ``@``,
    so a password holding an unencoded ``@``, ``/`` or ``#`` is masked too (at worst, more is).
    """
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    at = url.rfind("@")
    if at < start:
        return url
    user, colon, _ = url[start:at].partition(":")
    return url[:start] + (f"{user}:{REDACTED}" if colon else REDACTED) + url[at:]
