"""Header validation: nothing a caller passes can split a request or inject a header.

Invariant: a header leaves the core only if its name is an RFC 9110 token and its value is
visible ASCII, space or tab (no CR, LF, NUL or other control character, no non-ASCII). The
error names the header but never echoes the value, which may be a secret.
"""

from __future__ import annotations

import re

from kneo_proto._errors import KneoUsageError

__all__ = ["check_header_name", "check_header_value"]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5, restricted to ASCII: visible characters, space and tab.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_header_name(name: str) -> None:
    """Raise ``KneoUsageError`` unless ``name`` is a valid header name."""
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise KneoUsageError(f"invalid header name {name!r}: use letters, digits and -")


def check_header_value(name: str, value: str, *, allow_empty: bool = True) -> None:
    """Raise ``KneoUsageError`` unless ``value`` can be sent safely as header ``name``."""
    if not isinstance(value, str):
        raise KneoUsageError(f"header {name} must be a string, not {type(value).__name__}")
    if not value and not allow_empty:
        raise KneoUsageError(f"header {name} must not be empty")
    if _FIELD_VALUE.fullmatch(value) is None:
        raise KneoUsageError(
            f"header {name} holds a control or non-ASCII character; it was not sent"
        )
    if value != value.strip(" \t"):
        raise KneoUsageError(f"header {name} has leading or trailing whitespace")
